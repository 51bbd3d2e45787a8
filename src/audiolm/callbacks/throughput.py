"""Logs training throughput in real (non-padding) code tokens per second."""

from __future__ import annotations

import time

import lightning as L


class TokenThroughput(L.Callback):
    def __init__(self, every_n_steps: int = 10):
        self.every_n_steps = every_n_steps
        self._tokens = 0
        self._start: float | None = None

    def on_train_batch_start(self, trainer: L.Trainer, module: L.LightningModule, batch: dict, batch_idx: int) -> None:
        if self._start is None:
            self._start = time.perf_counter()

    def on_train_batch_end(
        self, trainer: L.Trainer, module: L.LightningModule, outputs, batch: dict, batch_idx: int
    ) -> None:
        self._tokens += int(batch["frame_mask"].sum()) * batch["codes"].shape[1]
        if trainer.global_step % self.every_n_steps == 0 and self._start is not None:
            elapsed = time.perf_counter() - self._start
            module.log("train/tokens_per_s", self._tokens / max(elapsed, 1e-9), prog_bar=True)
            self._tokens, self._start = 0, time.perf_counter()
