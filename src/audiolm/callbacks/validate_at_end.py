"""Validate once more at the last training step, so every run ends with validation figures.

Lightning validates every ``val_check_interval`` steps; a run whose ``max_steps`` is not a multiple of
it (``trainer.max_steps=30`` with the default 110) would end without any ``val/*`` metric, leaving
a sweep's objective, the checkpoint monitor and the notebooks' plots empty. Asking the trainer to
stop at the last step makes its epoch loop run the validation loop before it ends (Lightning checks
for validation after a stop request), and never adds a second validation at a step that already had one.
"""

from __future__ import annotations

import lightning as L


class ValidateAtEnd(L.Callback):
    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, outputs, batch, batch_idx: int) -> None:
        if 0 < trainer.max_steps <= trainer.global_step and trainer.limit_val_batches != 0:
            trainer.should_stop = True
