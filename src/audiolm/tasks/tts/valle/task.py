"""The VALL-E task: trains a ``VallE`` model, one codebook level per item.

    batch (phonemes [B, T], prompt [B, Q, Fp], codes [B, Q, F]) --layout--> ids [B, L, Q]
        AR items (level 0):  next-code prediction of level 0, then EOS
        NAR items (level l): level l of every target frame, from the levels below it

Each training item trains one level drawn from ``rvq_levels_p``; its text and prompt are dropped
(replaced by null ids) with ``cfg_cond_dropout_p`` / ``cfg_prom_dropout_p`` so that classifier-
free guidance works at inference. Validation scores every level of every item, with nothing
dropped, so its per-level figures are exact and repeatable. Figures are logged for all levels,
for the AR level (``ar/``) and for the NAR levels (``nar/``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from audiolm.errors import ConfigError
from audiolm.metrics.levels import add_sums, level_sums, log_levels
from audiolm.tasks.base import IGNORE
from audiolm.tasks.tts.speech import SpeechTask
from audiolm.tasks.tts.valle.layout import level_probabilities
from audiolm.tasks.tts.valle.model import VallE

Items = list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
Pass = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class VallETask(SpeechTask):
    """Args:
    model: a ``VallE``; optim, lora: see ``tasks.base.Task`` (the LoRA base model is loaded by
        ``runs.train`` from ``lora.base``).
    rvq_levels_p: how often each level is trained (``layout.level_probabilities``).
    cfg_cond_dropout_p, cfg_prom_dropout_p: see ``SpeechTask``.
    """

    model: VallE

    def __init__(
        self,
        model: VallE,
        optim: dict,
        rvq_levels_p: str | list[float] = "equal",
        cfg_cond_dropout_p: float = 0.1,
        cfg_prom_dropout_p: float = 0.1,
        lora: dict | None = None,
    ):
        super().__init__(model, optim, cfg_cond_dropout_p, cfg_prom_dropout_p, lora)
        self.register_buffer("level_p", level_probabilities(rvq_levels_p, model.layout.q), persistent=False)

    # -- sequences of a batch ------------------------------------------------------------------
    @staticmethod
    def _items(batch: dict[str, torch.Tensor]) -> Items:
        """(phonemes [T], prompt [Q, Fp], codes [Q, F]) of each item, unpadded, on the CPU for layout."""
        cpu = {
            k: batch[k].cpu()
            for k in ("phonemes", "phonemes_lengths", "prompt", "prompt_lengths", "codes", "codes_lengths")
        }
        return [
            (
                cpu["phonemes"][b, : cpu["phonemes_lengths"][b]],
                cpu["prompt"][b, :, : cpu["prompt_lengths"][b]],
                cpu["codes"][b, :, : cpu["codes_lengths"][b]],
            )
            for b in range(len(cpu["codes_lengths"]))
        ]

    def _pad(self, seqs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """[L_b, Q] sequences -> ids [B, L_max, Q] (empty-id padded) on the device, and padding_mask [B, L_max]."""
        backbone = self.model.backbone
        longest, limit = max(s.shape[0] for s in seqs), backbone.max_length
        if limit is not None and longest > limit:
            raise ConfigError(
                f"a training sequence has {longest} positions but {type(backbone).__name__} accepts "
                f"{limit}; lower data.segment_seconds or task.model.prompt_seconds, or raise "
                f"model.max_position_embeddings"
            )
        ids = torch.zeros(len(seqs), longest, self.model.layout.q, dtype=torch.long)
        mask = torch.zeros(len(seqs), longest, dtype=torch.bool)
        for b, s in enumerate(seqs):
            ids[b, : s.shape[0]], mask[b, : s.shape[0]] = s, True
        return ids.to(self.device), mask.to(self.device)

    @staticmethod
    def _gather(hidden: torch.Tensor, starts: list[int], lengths: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """hidden [B, L, H] -> its positions ``starts[b] + 0..lengths[b]-1``: [B, T_max, H], valid [B, T_max]."""
        t = torch.arange(max(lengths), device=hidden.device)
        start = torch.tensor(starts, device=hidden.device)[:, None]
        valid = t[None] < torch.tensor(lengths, device=hidden.device)[:, None]
        index = torch.where(valid, start + t, 0)
        return hidden.gather(1, index[..., None].expand(-1, -1, hidden.shape[-1])), valid

    @staticmethod
    def _pad_targets(targets: list[torch.Tensor], valid: torch.Tensor) -> torch.Tensor:
        out = torch.full(valid.shape, IGNORE, dtype=torch.long)
        for b, t in enumerate(targets):
            out[b, : len(t)] = t
        return out.to(valid.device)

    # -- the two passes ------------------------------------------------------------------------
    def _ar_pass(self, items: Items, drop_text: torch.Tensor, drop_prompt: torch.Tensor) -> Pass:
        """AR logits [B, F+1, K+1], targets [B, F+1] (level-0 codes then EOS; IGNORE past the end), valid."""
        model, layout = self.model, self.model.layout
        seqs, starts, lengths, targets = [], [], [], []
        for (ph, prompt, codes), dt, dp in zip(items, drop_text, drop_prompt, strict=True):
            prefix = layout.prefix(0, ph, prompt, bool(dt), bool(dp))
            seqs.append(torch.cat([prefix, layout.ar_inputs(codes[0])]))
            starts.append(prefix.shape[0] - 1)  # BOS predicts the first frame
            lengths.append(codes.shape[1] + 1)
            targets.append(torch.cat([codes[0], torch.tensor([layout.eos])]))
        ids, _ = self._pad(seqs)
        hidden, valid = self._gather(model.backbone(model.embed(ids))[0], starts, lengths)
        return model.ar_head(hidden), self._pad_targets(targets, valid), valid

    def _nar_pass(self, items: Items, levels: torch.Tensor, drop_text: torch.Tensor, drop_prompt: torch.Tensor) -> Pass:
        """NAR logits [B, F, K] of each item's level, targets [B, F], valid."""
        model, layout = self.model, self.model.layout
        seqs, starts, lengths, targets = [], [], [], []
        for (ph, prompt, codes), level, dt, dp in zip(items, levels.tolist(), drop_text, drop_prompt, strict=True):
            prefix = layout.prefix(level, ph, prompt, bool(dt), bool(dp))
            seq, start = layout.nar_sequence(prefix, codes, level, model.echo)
            seqs.append(seq)
            starts.append(start)
            lengths.append(codes.shape[1])
            targets.append(codes[level])
        ids, mask = self._pad(seqs)
        hidden, valid = self._gather(model.nar_hidden(ids, mask), starts, lengths)
        return model.nar_logits(hidden, levels.to(self.device)), self._pad_targets(targets, valid), valid

    # -- losses --------------------------------------------------------------------------------
    def level_losses(
        self, batch: dict[str, torch.Tensor], levels: torch.Tensor, drop_text: torch.Tensor, drop_prompt: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Summed NLL, correct and token counts per level for items trained at ``levels`` [B], and ``loss``."""
        items = self._items(batch)
        ar = (levels == 0).nonzero()[:, 0].tolist()
        nar = (levels > 0).nonzero()[:, 0].tolist()
        passes = []
        if ar:
            passes.append(
                (
                    torch.zeros(len(ar), dtype=torch.long),
                    self._ar_pass([items[i] for i in ar], drop_text[ar], drop_prompt[ar]),
                )
            )
        if nar:
            passes.append(
                (levels[nar], self._nar_pass([items[i] for i in nar], levels[nar], drop_text[nar], drop_prompt[nar]))
            )
        out: dict[str, torch.Tensor] = {}
        for item_levels, (logits, targets, valid) in passes:
            nll = F.cross_entropy(
                logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE, reduction="none"
            ).view_as(targets)
            correct = logits.detach().argmax(-1) == targets
            per_token = item_levels.to(valid.device)[:, None].expand_as(targets)
            add_sums(out, level_sums(nll, correct, valid, per_token, item_levels.unique().tolist()))
        total = sum(v for k, v in out.items() if k.startswith("nll_sum"))
        count = int(sum(v for k, v in out.items() if k.startswith("count")))
        # A batch of only AR (or only NAR) items leaves a head without gradient, which DDP refuses; a zero
        # term keeps both heads in every step's graph.
        unused = 0.0 * (self.model.ar_head.weight.sum() + self.model.nar_head.sum())
        out["loss"] = total / max(count, 1) + unused
        return out

    def losses(self, batch: dict[str, torch.Tensor], train: bool, batch_idx: int = 0) -> dict[str, torch.Tensor]:
        """Training: one drawn level per item, conditions dropped at random. Validation: every level of
        every item, nothing dropped."""
        b = batch["codes"].shape[0]
        drop_text, drop_prompt = self.drop_masks(b, train)
        if train:
            levels = torch.multinomial(self.level_p, b, replacement=True).cpu()
            return self.level_losses(batch, levels, drop_text, drop_prompt)
        out: dict[str, torch.Tensor] = {}
        for q in range(self.model.layout.q):
            add_sums(out, self.level_losses(batch, torch.full((b,), q), drop_text, drop_prompt))
        count = int(sum(v for k, v in out.items() if k.startswith("count")))
        out["loss"] = sum(v for k, v in out.items() if k.startswith("nll_sum")) / max(count, 1)
        return out

    def log_metrics(self, prefix: str, out: dict[str, torch.Tensor], batch: dict) -> None:
        q = self.model.layout.q
        log_levels(self, prefix, out, q, groups={"": range(q), "ar/": [0], "nar/": range(1, q)})
