"""The audio LM task: trains an ``AudioLM`` by next-token prediction, loss and accuracy per codebook level.

Targets are the pattern's steps; padding and the pattern's filler positions never count. Accuracy
is taken over the ids legal at each position, as sampling sees them.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from audiolm.data.datamodule import TokenDataModule
from audiolm.generation.sampling import restrict_to_range
from audiolm.metrics.levels import level_sums, log_levels
from audiolm.tasks.base import IGNORE, Samples, Task
from audiolm.tasks.lm.model import AudioLM
from audiolm.tasks.lm.samples import write_lm_samples


class LMTask(Task):
    """Args: model (an ``AudioLM``), optim, lora: see ``tasks.base.Task``."""

    model: AudioLM

    def losses(self, batch: dict[str, torch.Tensor], train: bool, batch_idx: int = 0) -> dict[str, torch.Tensor]:
        """Mean loss, and summed loss / correct counts / token counts for every codebook level."""
        model, pattern = self.model, self.model.pattern
        steps, real = pattern.encode_padded(batch["codes"], batch["frame_mask"])
        logits = model(model.with_start(steps[:, :-1]))
        targets = steps.masked_fill(~real, IGNORE)
        nll = F.cross_entropy(
            logits.flatten(0, 2).float(), targets.flatten(), ignore_index=IGNORE, reduction="none"
        ).view_as(targets)
        ranges = pattern.id_ranges(steps.shape[1]).to(steps.device)
        correct = restrict_to_range(logits.detach(), ranges[..., 0], ranges[..., 1]).argmax(-1) == steps
        levels = pattern.levels(steps.shape[1]).to(steps.device).expand_as(steps)
        out = level_sums(nll, correct, real, levels, range(pattern.n_codebooks))
        out["loss"] = nll.sum() / real.sum().clamp(min=1)
        return out

    def log_metrics(self, prefix: str, out: dict[str, torch.Tensor], batch: dict) -> None:
        log_levels(self, prefix, out, self.model.pattern.n_codebooks)

    def setup(self, stage: str) -> None:
        if self.trainer is not None and self.trainer.datamodule is not None:
            self.model.check_sequence_length(self.trainer.datamodule.max_frames)

    def write_samples(self, datamodule: TokenDataModule, out_dir: Path, **settings) -> Samples:
        """Unconditional samples and prompt continuations as WAVs (see ``tasks.lm.samples``)."""
        return write_lm_samples(self.model, datamodule, Path(out_dir), **settings)
