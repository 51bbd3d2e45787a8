"""The audio LM task: next-token prediction over codec tokens laid out by a pattern.

    codes [B, Q, F] --pattern--> steps [B, S, M] --embed--> [B, S, H] --backbone--> --head--> [B, S, M, V]

Input at position ``s`` is step ``s-1`` (a start id at ``s = 0``), so position ``s`` predicts
step ``s``. Loss and accuracy are reported per codebook level. ``generate`` samples new codes,
unconditionally or as the continuation of a prompt, through the backbone's cache.
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
from audiolm.backbones.lean import dense
from audiolm.codecs.base import AudioCodec
from audiolm.errors import ConfigError
from audiolm.generation.decode import decode
from audiolm.generation.sampling import Sampler, restrict_to_range
from audiolm.patterns.base import Pattern
from audiolm.tasks.lm.samples import write_lm_samples
from audiolm.tasks.optim import build_optimizer

IGNORE = -100


class AudioLMTask(L.LightningModule):
    def __init__(
        self,
        backbone: Backbone,
        pattern: Callable[..., Pattern],
        codec: AudioCodec,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: dict,
        weight_decay: float = 0.1,
        sampler: Sampler | None = None,
    ):
        super().__init__()
        self.backbone = backbone
        self.pattern = pattern(n_codebooks=codec.n_codebooks, codebook_size=codec.codebook_size)
        # The codec is a tool the task uses to listen, not a part it trains: keeping it out of the
        # module tree keeps pretrained codec weights out of every checkpoint.
        object.__setattr__(self, "codec", codec)
        self.optimizer, self.scheduler, self.weight_decay = optimizer, dict(scheduler), weight_decay
        self.sampler = sampler or Sampler()
        if self.sampler.guided:
            raise ConfigError(f"sampling.cfg_scale={self.sampler.cfg_scale}: the audio LM has no condition to "
                              f"guide by; keep sampling.cfg_scale=1")

        m, v, h = self.pattern.n_streams, self.pattern.vocab_size, backbone.hidden_size
        self.start_id = v  # one extra id per stream marks the start of a sequence
        self.embedding = nn.Embedding(m * (v + 1), h)
        self.register_buffer("stream_offsets", torch.arange(m) * (v + 1), persistent=False)
        self.head = nn.Linear(h, m * v, bias=False)
        nn.init.normal_(self.embedding.weight, std=0.02)
        nn.init.normal_(self.head.weight, std=0.02)

    # -- model ---------------------------------------------------------------------------------
    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """ids: [B, L, M] -> [B, L, H], the sum of each stream's embedding."""
        return self.embedding(ids + self.stream_offsets).sum(dim=2)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden: [B, L, H] -> logits: [B, L, M, V]."""
        b, length, _ = hidden.shape
        return self.head(hidden).view(b, length, self.pattern.n_streams, self.pattern.vocab_size)

    def decoding_functions(self) -> tuple[Callable[[torch.Tensor], torch.Tensor], ...]:
        """``embed`` and ``logits`` as a decoding loop calls them, one step at a time: the same maps
        without nn.Module dispatch (a fixed cost per call that is noticeable in a batch-1 step), the
        head weight laid out once as [H, M * V] for ``hidden @ w``, the faster layout for single
        rows (see ``audiolm.backbones.lean``)."""
        table, offsets, head = self.embedding.weight, self.stream_offsets, dense(self.head)
        m, v = self.pattern.n_streams, self.pattern.vocab_size

        def embed(ids: torch.Tensor) -> torch.Tensor:
            if m == 1:  # one stream (offset 0): no offset to add and no sum, a view of the lookup
                return F.embedding(ids, table).squeeze(2)
            return F.embedding(ids + offsets, table).sum(dim=2)  # [B, L, M, H] -> [B, L, H]

        def logits(hidden: torch.Tensor) -> torch.Tensor:
            return torch.mm(hidden.flatten(0, 1), head).view(*hidden.shape[:2], m, v)

        return embed, logits

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ids: [B, L, M] inputs -> logits [B, L, M, V] for the next step at each position."""
        hidden, _ = self.backbone(self.embed(ids))
        return self.logits(hidden)

    def with_start(self, steps: torch.Tensor) -> torch.Tensor:
        """steps: [B, S, M] -> [B, 1 + S, M] with the start id in front."""
        start = steps.new_full((steps.shape[0], 1, steps.shape[2]), self.start_id)
        return torch.cat([start, steps], dim=1)

    # -- training ------------------------------------------------------------------------------
    def step_losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Mean loss, and summed loss / correct counts / token counts for every codebook level."""
        steps, real = self.pattern.encode_padded(batch["codes"], batch["frame_mask"])
        logits = self(self.with_start(steps[:, :-1]))
        targets = steps.masked_fill(~real, IGNORE)
        nll = F.cross_entropy(logits.flatten(0, 2).float(), targets.flatten(), ignore_index=IGNORE,
                              reduction="none").view_as(targets)
        # Accuracy over the ids legal at each position, as sampling sees them (not other levels' ids).
        ranges = self.pattern.id_ranges(steps.shape[1]).to(steps.device)
        legal_logits = restrict_to_range(logits.detach(), ranges[..., 0], ranges[..., 1])
        correct = (legal_logits.argmax(-1) == steps) & real
        levels = self.pattern.levels(steps.shape[1]).to(steps.device).expand_as(steps)
        out = {"loss": nll.sum() / real.sum().clamp(min=1)}
        for q in range(self.pattern.n_codebooks):
            at_q = real & (levels == q)
            out[f"nll_sum_q{q}"] = nll[at_q].sum()
            out[f"correct_q{q}"] = correct[at_q].sum()
            out[f"count_q{q}"] = at_q.sum()
        return out

    def _log_metrics(self, prefix: str, out: dict[str, torch.Tensor]) -> None:
        # Weighted by token counts, so epoch values are corpus per-token figures, not means of means.
        # Validation figures are synced across DDP ranks, so checkpoints monitor the global val/nll.
        n_levels, sync = self.pattern.n_codebooks, prefix == "val"
        n_tokens = max(int(sum(out[f"count_q{q}"] for q in range(n_levels))), 1)
        self.log(f"{prefix}/nll", out["loss"], prog_bar=True, batch_size=n_tokens, sync_dist=sync)
        self.log(f"{prefix}/bits_per_token", out["loss"] / math.log(2), batch_size=n_tokens, sync_dist=sync)
        for q in range(n_levels):
            n = max(int(out[f"count_q{q}"]), 1)
            self.log(f"{prefix}/nll_q{q}", out[f"nll_sum_q{q}"] / n, batch_size=n, sync_dist=sync)
            self.log(f"{prefix}/acc_q{q}", out[f"correct_q{q}"].float() / n, batch_size=n, sync_dist=sync)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        out = self.step_losses(batch)
        self._log_metrics("train", out)
        return out["loss"]

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._log_metrics("val", self.step_losses(batch))

    def setup(self, stage: str) -> None:
        if self.trainer is not None and self.trainer.datamodule is not None:
            self.check_sequence_length(self.trainer.datamodule.max_frames)

    def check_sequence_length(self, n_frames: int) -> None:
        """Fail before training when a window of ``n_frames`` frames is longer than the backbone accepts."""
        limit, need = self.backbone.max_length, self.pattern.num_steps(n_frames) + 1
        if limit is not None and need > limit:
            raise ConfigError(f"data.segment_seconds gives windows of {n_frames} frames, {need} positions with "
                              f"{type(self.pattern).__name__}, but {type(self.backbone).__name__} accepts {limit}; "
                              f"lower data.segment_seconds or raise model.max_position_embeddings")

    def configure_optimizers(self) -> dict:
        return build_optimizer(self, self.optimizer, self.weight_decay, self.scheduler)

    # -- codec state travels with the checkpoint -----------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["codec_state"] = {k: v.cpu() for k, v in self.codec.fitted_state().items()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if checkpoint.get("codec_state"):
            self.codec.load_fitted_state(checkpoint["codec_state"])

    # -- generation ----------------------------------------------------------------------------
    @torch.inference_mode()
    def generate(
        self,
        n_frames: int,
        prompt: torch.Tensor | None = None,
        batch_size: int = 1,
        use_cache: bool = True,
        generator: torch.Generator | None = None,
        progress: bool = False,
    ) -> torch.Tensor:
        """Sample codes [B, Q, n_frames]; with ``prompt`` [B, Q, Fp] the first Fp frames are the prompt's."""
        n_prompt = 0 if prompt is None else prompt.shape[-1]
        if n_prompt > n_frames:
            raise ValueError(f"prompt has {n_prompt} frames, more than the {n_frames} frames asked for")
        b = batch_size if prompt is None else prompt.shape[0]
        known = torch.empty(b, 0, self.pattern.n_streams, dtype=torch.long, device=self.device)
        forced = None
        if prompt is not None:
            prompt = prompt.to(self.device)
            encoded = self.pattern.encode(prompt)
            known = encoded[:, : self.pattern.prefix_steps(n_prompt)]
            real = self.pattern.step_mask(torch.ones(b, n_prompt, dtype=torch.bool, device=self.device))
            forced = encoded.masked_fill(~real, -1)  # every prompt code stays, also past the prefix
        n_steps, n_known = self.pattern.num_steps(n_frames), known.shape[1]
        if forced is not None:
            forced = forced[:, n_known:]
        embed, logits = self.decoding_functions()
        out = decode(embed, self.backbone, logits, self.embed(self.with_start(known)),
                     self.pattern.id_ranges(n_steps)[n_known:], self.sampler, forced=forced, use_cache=use_cache,
                     generator=generator, progress=progress)
        steps = torch.cat([known, out.steps], dim=1)
        return self.pattern.decode(steps)

    def write_samples(self, datamodule, out_dir, **settings) -> list[dict]:
        """Unconditional samples and prompt continuations as WAVs (see ``lm_samples``)."""
        return write_lm_samples(self, datamodule, out_dir, **settings)
