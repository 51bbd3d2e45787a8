"""Codec-LM text-to-speech in the VALL-E style: one backbone, level 0 autoregressive (AR), levels
1..Q-1 non-autoregressive (NAR), conditioned on phonemes and a speaker prompt.

    batch (phonemes [B, T], prompt [B, Q, Fp], codes [B, Q, F]) --layout--> ids [B, L, Q]
        --embed (sum of the Q ids)--> [B, L, H] --backbone--> hidden
        AR:  --ar_head--> [.., K + 1] (level-0 codes and EOS), causal
        NAR: --nar_head[l]--> [.., K] (level l), attending both ways where the backbone can

Each training item trains one level drawn from ``rvq_levels_p``; its text and prompt are dropped
(replaced by null ids) with ``cfg_cond_dropout_p`` / ``cfg_prom_dropout_p`` so that classifier-
free guidance works at inference. Validation scores every level of every item, with nothing
dropped, so its per-level figures are exact and repeatable. See ``tts_layout`` for the sequences
and ``tts_synthesis`` for inference.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from audiolm.backbones.base import Backbone
from audiolm.adapters.lora import LoraSettings, add_lora
from audiolm.codecs.base import AudioCodec
from audiolm.errors import ConfigError, DataError
from audiolm.generation.sampling import Sampler
from audiolm.tasks.optim import build_optimizer
from audiolm.tasks.tts.valle.layout import TokenLayout, level_probabilities
from audiolm.text.frontend import TextFrontend

IGNORE = -100


class SpeechTask:
    """What the TTS tasks share: their common settings, and checkpoint hooks that carry the codec
    state and the phoneme vocabulary with the weights."""

    def _init_speech(self, backbone: Backbone, codec: AudioCodec, text: TextFrontend,
                     optimizer: Callable[..., torch.optim.Optimizer], scheduler: dict, weight_decay: float,
                     sampler: Sampler | None, cfg_cond_dropout_p: float, cfg_prom_dropout_p: float,
                     prompt_seconds: float) -> None:
        for name, p in (("cfg_cond_dropout_p", cfg_cond_dropout_p), ("cfg_prom_dropout_p", cfg_prom_dropout_p)):
            if not 0 <= p < 1:
                raise ConfigError(f"task.{name} must be in [0, 1), got {p}")
        if prompt_seconds <= 0:
            raise ConfigError(f"task.prompt_seconds must be > 0, got {prompt_seconds}")
        self.backbone, self.text = backbone, text
        object.__setattr__(self, "codec", codec)  # a tool, not a trained part: kept out of checkpoints
        self.optimizer, self.scheduler, self.weight_decay = optimizer, dict(scheduler), weight_decay
        self.sampler = sampler or Sampler()
        self.cfg_cond_dropout_p, self.cfg_prom_dropout_p = cfg_cond_dropout_p, cfg_prom_dropout_p
        self.prompt_frames = max(int(round(prompt_seconds * codec.frame_rate)), 1)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["codec_state"] = {k: v.cpu() for k, v in self.codec.fitted_state().items()}
        checkpoint["phoneme_vocab"] = self.text.vocab.to_json()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if checkpoint.get("codec_state"):
            self.codec.load_fitted_state(checkpoint["codec_state"])
        saved = checkpoint.get("phoneme_vocab")
        if saved is not None and saved != self.text.vocab.to_json():
            raise DataError("the checkpoint was trained with another phoneme vocabulary than text.symbols gives now; "
                            "its phoneme ids would mean other sounds. Keep the run's text settings.")


class TTSTask(SpeechTask, L.LightningModule):
    """Args:
        backbone, codec, sampler: the run's shared parts (``sampler`` drives the AR pass).
        text: the text front-end (phonemizer language and phoneme vocabulary).
        optimizer, scheduler, weight_decay: see ``tasks.optim``.
        nar_temperature: sampling temperature of the NAR levels (0: greedy, as the seed found best); their
            guidance follows ``sampler``'s, so an eval-time ``sampling.cfg_scale`` reaches both passes.
        rvq_levels_p: how often each level is trained (``tts_layout.level_probabilities``).
        cfg_cond_dropout_p, cfg_prom_dropout_p: chance that an item's text / prompt is dropped.
        prompt_seconds: prompt length in training, and of the null prompt when synthesising without one.
        lora: LoRA settings (``backbones.lora.LoraSettings`` keys); None or rank 0 trains every weight. The
            base model is loaded by ``runs.train`` from ``lora.base``.
    """

    def __init__(self, backbone: Backbone, codec: AudioCodec, text: TextFrontend,
                 optimizer: Callable[..., torch.optim.Optimizer], scheduler: dict, weight_decay: float = 0.1,
                 sampler: Sampler | None = None, nar_temperature: float = 0.0,
                 rvq_levels_p: str | list[float] = "equal", cfg_cond_dropout_p: float = 0.1,
                 cfg_prom_dropout_p: float = 0.1, prompt_seconds: float = 3.0, lora: dict | None = None):
        super().__init__()
        self._init_speech(backbone, codec, text, optimizer, scheduler, weight_decay, sampler, cfg_cond_dropout_p,
                          cfg_prom_dropout_p, prompt_seconds)
        self.nar_sampler = Sampler(temperature=nar_temperature, cfg_scale=self.sampler.cfg_scale,
                                   cfg_rescale=self.sampler.cfg_rescale)
        q, k, h = codec.n_codebooks, codec.codebook_size, backbone.hidden_size
        self.layout = TokenLayout(len(text.vocab), q, k)
        self.register_buffer("level_p", level_probabilities(rvq_levels_p, q), persistent=False)
        self.embedding = nn.EmbeddingBag(self.layout.size, h, mode="sum", padding_idx=0)
        self.ar_head = nn.Linear(h, k + 1, bias=False)
        self.nar_head = nn.Parameter(torch.empty(q - 1, k, h))
        for w in (self.embedding.weight, self.ar_head.weight, self.nar_head):
            nn.init.normal_(w, std=0.02)
        with torch.no_grad():
            self.embedding.weight[0].zero_()
        self.lora_settings = LoraSettings(**lora) if lora and lora.get("rank") else None
        if self.lora_settings is not None:  # finetuning: the adapters alone train
            self.requires_grad_(False)
            add_lora(self.backbone, self.lora_settings, backbone.lora_targets)

    @property
    def lora_module(self) -> nn.Module:
        """Where LoRA adapters go (``backbones.lora``)."""
        return self.backbone

    # -- model ---------------------------------------------------------------------------------
    @property
    def echo(self) -> bool:
        """NAR passes repeat the target on backbones that cannot attend both ways (see ``tts_layout``)."""
        return not self.backbone.bidirectional

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """ids: [B, L, Q] -> [B, L, H], the sum of each stream's embedding (id 0 adds nothing)."""
        b, length, q = ids.shape
        return self.embedding(ids.reshape(-1, q)).view(b, length, -1)

    def nar_hidden(self, ids: torch.Tensor, padding_mask: torch.Tensor) -> torch.Tensor:
        """ids [B, L, Q], padding_mask [B, L] -> hidden [B, L, H] of a NAR pass."""
        if self.echo:
            return self.backbone(self.embed(ids))[0]  # right padding never reaches real positions causally
        return self.backbone.forward_bidirectional(self.embed(ids), padding_mask)

    def nar_logits(self, hidden: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
        """hidden [B, F, H], levels [B] (each in 1..Q-1) -> logits [B, F, K]."""
        return torch.einsum("bfh,bkh->bfk", hidden, self.nar_head[levels - 1])

    # -- training ------------------------------------------------------------------------------
    def _items(self, batch: dict[str, torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """(phonemes [T], prompt [Q, Fp], codes [Q, F]) of each item, unpadded, on the CPU for layout."""
        cpu = {k: batch[k].cpu() for k in ("phonemes", "phonemes_lengths", "prompt", "prompt_lengths", "codes",
                                           "codes_lengths")}
        return [(cpu["phonemes"][b, : cpu["phonemes_lengths"][b]], cpu["prompt"][b, :, : cpu["prompt_lengths"][b]],
                 cpu["codes"][b, :, : cpu["codes_lengths"][b]]) for b in range(len(cpu["codes_lengths"]))]

    def _pad(self, seqs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """[L_b, Q] sequences -> ids [B, L_max, Q] (empty-id padded) on the device, and padding_mask [B, L_max]."""
        longest = max(s.shape[0] for s in seqs)
        limit = self.backbone.max_length
        if limit is not None and longest > limit:
            raise ConfigError(f"a training sequence has {longest} positions but {type(self.backbone).__name__} accepts "
                              f"{limit}; lower data.segment_seconds or task.prompt_seconds, or raise "
                              f"model.max_position_embeddings")
        ids = torch.zeros(len(seqs), longest, self.layout.q, dtype=torch.long)
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

    def _ar_pass(self, items, drop_text, drop_prompt) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """AR logits [B, F+1, K+1], targets [B, F+1] (level-0 codes then EOS; IGNORE past the end)."""
        seqs, starts, lengths, targets = [], [], [], []
        for (ph, prompt, codes), dt, dp in zip(items, drop_text, drop_prompt):
            prefix = self.layout.prefix(0, ph, prompt, bool(dt), bool(dp))
            seqs.append(torch.cat([prefix, self.layout.ar_inputs(codes[0])]))
            starts.append(prefix.shape[0] - 1)  # BOS predicts the first frame
            lengths.append(codes.shape[1] + 1)
            targets.append(torch.cat([codes[0], torch.tensor([self.layout.eos])]))
        ids, _ = self._pad(seqs)
        hidden, valid = self._gather(self.backbone(self.embed(ids))[0], starts, lengths)
        return self.ar_head(hidden), self._pad_targets(targets, valid), valid

    def _nar_pass(self, items, levels, drop_text, drop_prompt) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """NAR logits [B, F, K] of each item's level, targets [B, F]."""
        seqs, starts, lengths, targets = [], [], [], []
        for (ph, prompt, codes), level, dt, dp in zip(items, levels.tolist(), drop_text, drop_prompt):
            prefix = self.layout.prefix(level, ph, prompt, bool(dt), bool(dp))
            seq, start = self.layout.nar_sequence(prefix, codes, level, self.echo)
            seqs.append(seq)
            starts.append(start)
            lengths.append(codes.shape[1])
            targets.append(codes[level])
        ids, mask = self._pad(seqs)
        hidden, valid = self._gather(self.nar_hidden(ids, mask), starts, lengths)
        return self.nar_logits(hidden, levels.to(self.device)), self._pad_targets(targets, valid), valid

    @staticmethod
    def _pad_targets(targets: list[torch.Tensor], valid: torch.Tensor) -> torch.Tensor:
        out = torch.full(valid.shape, IGNORE, dtype=torch.long)
        for b, t in enumerate(targets):
            out[b, : len(t)] = t
        return out.to(valid.device)

    def level_losses(self, batch: dict[str, torch.Tensor], levels: torch.Tensor, drop_text: torch.Tensor,
                     drop_prompt: torch.Tensor) -> dict[str, torch.Tensor]:
        """Summed NLL, correct and token counts per level for items trained at ``levels`` [B]."""
        items = self._items(batch)
        out: dict[str, torch.Tensor] = {}
        ar = (levels == 0).nonzero()[:, 0].tolist()
        nar = (levels > 0).nonzero()[:, 0].tolist()
        passes = []
        if ar:
            passes.append((torch.zeros(len(ar), dtype=torch.long),
                           self._ar_pass([items[i] for i in ar], drop_text[ar], drop_prompt[ar])))
        if nar:
            passes.append((levels[nar], self._nar_pass([items[i] for i in nar], levels[nar], drop_text[nar],
                                                       drop_prompt[nar])))
        for item_levels, (logits, targets, valid) in passes:
            nll = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE,
                                  reduction="none").view_as(targets)
            correct = (logits.detach().argmax(-1) == targets) & valid
            per_token = item_levels.to(valid.device)[:, None].expand_as(targets)
            for q in item_levels.unique().tolist():
                at = valid & (per_token == q)
                out[f"nll_sum_q{q}"] = out.get(f"nll_sum_q{q}", 0) + nll[at].sum()
                out[f"correct_q{q}"] = out.get(f"correct_q{q}", 0) + correct[at].sum()
                out[f"count_q{q}"] = out.get(f"count_q{q}", 0) + at.sum()
        total = sum(out[k] for k in out if k.startswith("nll_sum"))
        # A batch of only AR (or only NAR) items leaves a head without gradient, which DDP refuses; a zero
        # term keeps both heads in every step's graph.
        unused = 0.0 * (self.ar_head.weight.sum() + self.nar_head.sum())
        out["loss"] = total / max(int(sum(out[k] for k in out if k.startswith("count"))), 1) + unused
        return out

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        b = batch["codes"].shape[0]
        levels = torch.multinomial(self.level_p, b, replacement=True).cpu()
        drop_text = torch.rand(b) < self.cfg_cond_dropout_p
        drop_prompt = torch.rand(b) < self.cfg_prom_dropout_p
        out = self.level_losses(batch, levels, drop_text, drop_prompt)
        self._log_metrics("train", out)
        return out["loss"]

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        b, keep = batch["codes"].shape[0], torch.zeros(batch["codes"].shape[0], dtype=torch.bool)
        merged: dict[str, torch.Tensor] = {}
        for q in range(self.layout.q):  # every level of every item
            merged.update({k: v for k, v in self.level_losses(batch, torch.full((b,), q), keep, keep).items()
                           if k != "loss"})
        self._log_metrics("val", merged)

    def _log_metrics(self, prefix: str, out: dict[str, torch.Tensor]) -> None:
        # Token-weighted, so epoch values are per-token figures over the corpus; val is synced across ranks.
        sync = prefix == "val"
        groups = {"": range(self.layout.q), "ar/": [0], "nar/": range(1, self.layout.q)}
        for name, levels in groups.items():
            present = [q for q in levels if f"count_q{q}" in out]
            n = int(sum(out[f"count_q{q}"] for q in present)) if present else 0
            if not n:
                continue
            nll = sum(out[f"nll_sum_q{q}"] for q in present) / n
            self.log(f"{prefix}/{name}nll", nll, prog_bar=name == "", batch_size=n, sync_dist=sync)
            self.log(f"{prefix}/{name}acc", sum(out[f"correct_q{q}"] for q in present).float() / n, batch_size=n,
                     sync_dist=sync)
            if name == "":
                self.log(f"{prefix}/bits_per_token", nll / math.log(2), batch_size=n, sync_dist=sync)
        for q in range(self.layout.q):
            n = int(out.get(f"count_q{q}", 0))
            if n:
                self.log(f"{prefix}/nll_q{q}", out[f"nll_sum_q{q}"] / n, batch_size=n, sync_dist=sync)
                self.log(f"{prefix}/acc_q{q}", out[f"correct_q{q}"].float() / n, batch_size=n, sync_dist=sync)

    def configure_optimizers(self) -> dict:
        return build_optimizer(self, self.optimizer, self.weight_decay, self.scheduler)

    # -- checkpoints: codec state and phoneme vocabulary travel with the weights ---------------
    # -- inference -----------------------------------------------------------------------------
    def generate(self, phonemes: list[int], prompt: torch.Tensor | None, max_frames: int, n_samples: int = 1,
                 use_cache: bool = True, generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """Codes [Q, F_i] for ``n_samples`` renditions of ``phonemes`` in the voice of ``prompt`` [Q, Fp]."""
        from audiolm.tasks.tts.synthesize import generate_codes

        return generate_codes(self, phonemes, prompt, max_frames, n_samples, use_cache, generator)

    def write_samples(self, datamodule, out_dir, **settings) -> list[dict]:
        """Held-out texts spoken in held-out voices, with WER/CER and speaker similarity when models are given."""
        from audiolm.tasks.tts.samples import write_tts_samples

        return write_tts_samples(self, datamodule, out_dir, **settings)
