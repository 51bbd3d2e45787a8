"""The parallel TTS task: trains a ``ParallelTTS`` model with its mode's losses (masked NAR tokens and
duration, or next-frame AR tokens), each codebook level weighted by ``level_loss_weights``.

An item's text and prompt are dropped with ``cfg_cond_dropout_p`` / ``cfg_prom_dropout_p`` (see
``SpeechTask``). Validation drops nothing and draws its NAR masks from a seed per batch, so its
figures are repeatable across evaluations. Logged: per-level NLL and accuracy (``metrics.levels``)
and the mode's own scalar figures (``loss``, ``duration_loss``, ...).
"""

from __future__ import annotations

import torch

from audiolm.metrics.levels import is_level_key, log_levels
from audiolm.tasks.tts.parallel.model import ParallelTTS
from audiolm.tasks.tts.speech import SpeechTask
from audiolm.tasks.tts.valle.layout import level_probabilities


class ParallelTTSTask(SpeechTask):
    """Args:
    model: a ``ParallelTTS``; optim, lora: see ``tasks.base.Task``.
    level_loss_weights: ``equal`` | ``normal`` | ``decreasing`` | Q weights: each level's weight in the
        token loss (``valle.layout.level_probabilities``, scaled to mean 1).
    cfg_cond_dropout_p, cfg_prom_dropout_p: see ``SpeechTask``.
    """

    model: ParallelTTS

    def __init__(
        self,
        model: ParallelTTS,
        optim: dict,
        level_loss_weights: str | list[float] = "equal",
        cfg_cond_dropout_p: float = 0.1,
        cfg_prom_dropout_p: float = 0.1,
        lora: dict | None = None,
    ):
        super().__init__(model, optim, cfg_cond_dropout_p, cfg_prom_dropout_p, lora)
        weights = level_probabilities(level_loss_weights, model.n_levels) * model.n_levels
        self.register_buffer("level_weights", weights, persistent=False)

    def losses_for(
        self,
        batch: dict[str, torch.Tensor],
        drop_text: torch.Tensor,
        drop_prompt: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        """``loss`` (what is optimised), per-level ``nll_sum_q{q}`` / ``correct_q{q}`` / ``count_q{q}`` and the
        mode's own scalar figures, for a batch whose items' text / prompt are dropped where drop_* [B] say."""
        return self.model.mode.losses(self.model, batch, drop_text, drop_prompt, self.level_weights, generator)

    def losses(self, batch: dict[str, torch.Tensor], train: bool, batch_idx: int = 0) -> dict[str, torch.Tensor]:
        drop_text, drop_prompt = self.drop_masks(batch["codes"].shape[0], train)
        generator = None if train else torch.Generator().manual_seed(batch_idx)
        return self.losses_for(batch, drop_text, drop_prompt, generator)

    def log_metrics(self, prefix: str, out: dict[str, torch.Tensor], batch: dict) -> None:
        log_levels(self, prefix, out, self.model.n_levels)
        for key, value in out.items():  # the loss and the mode's own figures, per item
            if not is_level_key(key):
                self.log(
                    f"{prefix}/{key}",
                    value.detach().float(),
                    batch_size=batch["codes"].shape[0],
                    sync_dist=prefix == "val",
                )
