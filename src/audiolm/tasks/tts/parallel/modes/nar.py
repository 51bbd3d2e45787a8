"""The NAR mode: a masked generative model over every level of every frame, with a duration head.

Training: a share of the response units (see ``masking``) is replaced by the mask id; the model,
attending both ways within the response and with the segmented mask of ``sequence``, predicts the
codes at the masked positions (loss on those only, levels weighted by the task's ``level_loss_weights``).
In the same pass the duration head reads the feature at BOS, the separator after the prompt, and
regresses log(frames) of the target; items whose text was dropped for guidance are left out of
that loss, as no duration follows from no text.

Inference: the duration head's frame count F, then N demasking steps from a fully masked
response. Each step samples every masked unit (temperature annealed linearly towards 0 over the
steps), scores each by the log-probability of what it drew (summed over the levels of a timestep
with ``mask_unit=timestep``), accepts the most confident ones and re-masks the rest, as many as
the cosine schedule says. Accepted units keep their codes to the end. Classifier-free guidance
(with rescale) combines conditional and unconditional rows through ``model.sampler.guide``.
"""

from __future__ import annotations

import copy
import logging
import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from audiolm.backbones.base import Backbone
from audiolm.errors import ConfigError
from audiolm.generation.sampling import Sampler
from audiolm.tasks.tts.parallel.losses import level_losses
from audiolm.tasks.tts.parallel.masking import (
    RATIO_SAMPLERS,
    check_masking,
    demask_schedule,
    keep_least_confident,
    training_mask,
)
from audiolm.tasks.tts.parallel.sequence import Packed

if TYPE_CHECKING:  # the model builds its mode
    from audiolm.tasks.tts.parallel.model import ParallelTTS

log = logging.getLogger(__name__)


class MaskedMode(nn.Module):
    """Args:
    hidden_size, backbone: given by the model (the backbone must attend both ways).
    mask_ratio: share of response units masked in training (with ``ratio_sampling=fixed``).
    ratio_sampling: ``fixed`` (always ``mask_ratio``) or ``cosine`` (drawn per item, MaskGIT).
    mask_unit: ``timestep`` (all levels of a frame masked and accepted together) or ``level``.
    steps: demasking steps N at inference.
    duration_loss_weight: weight of the duration regression next to the token loss.
    """

    def __init__(
        self,
        hidden_size: int,
        backbone: Backbone,
        mask_ratio: float = 0.8,
        ratio_sampling: str = "fixed",
        mask_unit: str = "timestep",
        steps: int = 16,
        duration_loss_weight: float = 1.0,
    ):
        super().__init__()
        if not backbone.bidirectional:
            raise ConfigError(
                f"the NAR mode of task=tts_parallel attends both ways within the response, but "
                f"{type(backbone).__name__} only runs causally. Choose an attention backbone "
                f"(model=llama or model=transformer), or the AR mode "
                f"(task/tts/parallel/mode@task.model.mode=ar)"
            )
        check_masking(mask_unit, ratio_sampling, mask_ratio)
        if steps < 1:
            raise ConfigError(f"model.model.mode.steps must be >= 1, got {steps}")
        self.mask_ratio, self.ratio_sampling, self.mask_unit = mask_ratio, ratio_sampling, mask_unit
        self.steps, self.duration_loss_weight = steps, duration_loss_weight
        self.duration = nn.Linear(hidden_size, 1)

    @staticmethod
    def classes(codebook_size: int) -> int:
        """Decoder classes per level: the K codes."""
        return codebook_size

    @property
    def per_level(self) -> bool:
        return self.mask_unit == "level"

    @staticmethod
    def _hidden(model: ParallelTTS, packed: Packed) -> torch.Tensor:
        return model.backbone.forward_masked(packed.embeds, packed.segmented_mask())

    # -- training ------------------------------------------------------------------------------
    def losses(
        self,
        model: ParallelTTS,
        batch: dict[str, torch.Tensor],
        drop_text: torch.Tensor,
        drop_prompt: torch.Tensor,
        level_weights: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        """Token losses at the masked positions plus the duration loss; see ``ParallelTTSTask.losses_for``."""
        codes, lengths = batch["codes"].transpose(1, 2).cpu(), batch["codes_lengths"].cpu()  # [B, F, Q]
        ratios = RATIO_SAMPLERS[self.ratio_sampling](self.mask_ratio, len(lengths), generator)
        masked = training_mask(lengths, model.n_levels, ratios, self.per_level, generator)
        inputs = torch.where(masked, model.mask_id, codes)
        packed = model.pack_batch(batch, inputs, drop_text, drop_prompt)
        hidden = self._hidden(model, packed)
        response, _ = packed.response_hidden(hidden)
        codes, masked = codes.to(model.device), masked.to(model.device)
        out = level_losses(model.decoder(response), codes, masked, level_weights)
        predicted = self.duration(packed.at_bos(hidden))[:, 0].float()
        target = lengths.to(model.device).float().log()
        keep = (~drop_text).to(model.device)
        n = keep.sum().clamp_min(1)
        out["duration_loss"] = ((predicted - target).square() * keep).sum() / n
        out["duration_abs_log_error"] = ((predicted - target).abs().detach() * keep).sum() / n
        out["token_loss"] = out["loss"].detach()
        out["loss"] = out["loss"] + self.duration_loss_weight * out["duration_loss"]
        return out

    # -- inference -----------------------------------------------------------------------------
    def predicted_frames(self, model: ParallelTTS, condition: dict[str, torch.Tensor]) -> float:
        """Frames the duration head predicts for the first (conditional) row of ``condition``."""
        first = {k: v[:1] for k, v in condition.items()}
        packed = model.pack_ids(
            **first,
            response=torch.zeros(1, 0, model.n_levels, dtype=torch.long),
            response_lengths=torch.zeros(1, dtype=torch.long),
        )
        return math.exp(float(self.duration(packed.at_bos(self._hidden(model, packed)))[0, 0]))

    @torch.inference_mode()
    def generate(
        self,
        model: ParallelTTS,
        phonemes: torch.Tensor,
        prompt: torch.Tensor | None,
        max_frames: int,
        n: int,
        use_cache: bool,
        generator: torch.Generator | None,
    ) -> list[torch.Tensor]:
        """``n`` renditions: codes [Q, F] each, F from the duration head (``use_cache`` has no effect here)."""
        condition = model.condition(phonemes, prompt, n)
        max_frames = model.condition_budget(condition, max_frames)
        predicted = self.predicted_frames(model, condition)
        frames = min(max(round(predicted), 1), max_frames)
        if predicted > max_frames:
            log.warning(
                "the duration head asks for %.0f frames; the max duration guard cuts it to %d (raise "
                "max_seconds if the text is long)",
                predicted,
                max_frames,
            )
        codes = self.demask(model, condition, frames, n, generator)
        return list(codes.transpose(1, 2).cpu())

    def demask(
        self,
        model: ParallelTTS,
        condition: dict[str, torch.Tensor],
        frames: int,
        n: int,
        generator: torch.Generator | None = None,
        trace: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Codes [n, F, Q] after ``self.steps`` demasking steps; ``trace`` (if given) gets, after each step,
        the masked units [n, U] and the codes [n, F, Q] (the mask id where masked)."""
        sampler, q = model.sampler, model.n_levels
        rows = condition["drop_text"].shape[0]
        n_units = frames * (q if self.per_level else 1)
        codes = torch.full((n, frames, q), model.mask_id, dtype=torch.long, device=model.device)
        masked = torch.ones(n, n_units, dtype=torch.bool, device=model.device)
        lengths = torch.full((rows,), frames, dtype=torch.long)
        for step, n_masked in enumerate(demask_schedule(n_units, self.steps)):
            if n_masked < int(masked[0].sum()):
                packed = model.pack_ids(**condition, response=codes.repeat(rows // n, 1, 1), response_lengths=lengths)
                logits = model.decoder(packed.response_hidden(self._hidden(model, packed))[0])  # [R, F, Q, K]
                if sampler.guided:
                    logits = sampler.guide(logits[:n], logits[n:])
                tokens = _annealed(sampler, step, self.steps)(logits, generator=generator)  # [n, F, Q]
                scores = logits.float().log_softmax(-1).gather(-1, tokens[..., None])[..., 0]
                scores = scores.flatten(1) if self.per_level else scores.sum(-1)
                still = keep_least_confident(scores, masked, n_masked)
                accepted = (masked & ~still).view(n, frames, -1).expand(-1, -1, q)
                codes = torch.where(accepted, tokens, codes)
                masked = still
            if trace is not None:
                trace.append((masked.clone(), codes.clone()))
        return codes


def _annealed(sampler: Sampler, step: int, steps: int) -> Sampler:
    """The sampler at step ``step`` of ``steps``: its temperature scaled by ``1 - step / steps``."""
    out = copy.copy(sampler)
    out.temperature = sampler.temperature * (1 - step / steps)
    return out
