"""Pre-flight: before the first step, one training step on the largest batch of the epoch, measured.

A run that cannot fit its largest batch used to find out when that batch came up, maybe an hour
in, by being killed (on CPU, after taking the machine's memory). This callback builds the batch
with the most padded positions from the train loader, runs the task's loss and backward on it,
measures the memory it took (CUDA: the allocator's peak; CPU: the process's resident size,
sampled), adds the optimiser's state (two fp32 values per trainable parameter, as Adam keeps) and
compares the sum with what the device has free. When it does not fit, the run stops at once with
one line naming the numbers and the keys to lower. On CPU a watchdog also stops the measured step
itself before it can exhaust the machine. Random state is left as it was: the step does not count.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from typing import Any

import lightning as L
import numpy as np
import psutil
import torch

from audiolm.errors import AudiolmError

log = logging.getLogger("audiolm")
GB = 2**30


class DoesNotFit(AudiolmError):
    """The largest batch would not fit the device."""


class Preflight(L.Callback):
    """Args:
    headroom: the share of the device's free memory a run may plan to use.
    """

    def __init__(self, headroom: float = 0.9):
        if not 0 < headroom <= 1:
            raise ValueError(f"callbacks.preflight.headroom must be in (0, 1], got {headroom}")
        self.headroom = headroom

    def on_fit_start(self, trainer: L.Trainer, task: L.LightningModule) -> None:
        loader = trainer.datamodule.train_dataloader()
        visits = loader.batch_sampler.largest_batch()
        if not visits:
            return
        lengths = loader.batch_sampler.lengths
        shape = f"{len(visits)} items, {len(visits) * max(lengths[v.index] for v in visits)} padded positions"
        batch = trainer.strategy.batch_to_device(loader.collate_fn([loader.dataset[v] for v in visits]))
        device = trainer.strategy.root_device
        free = _free_bytes(device)
        budget = self.headroom * free
        optimiser = 2 * 4 * sum(p.numel() for p in task.parameters() if p.requires_grad)
        need = _measure(lambda: self._step(trainer, task, batch), device, budget, lambda n: self._fail(shape, n, free))
        need += optimiser
        if need > budget:
            raise self._fail(shape, need, free)
        log.info(
            "pre-flight: a step on the largest batch (%s) takes ~%.2f GB with the optimiser state; %.1f GB free on %s",
            shape,
            need / GB,
            free / GB,
            device,
        )

    @staticmethod
    def _step(trainer: L.Trainer, task: L.LightningModule, batch: Any) -> None:
        state = np.random.get_state()
        with torch.random.fork_rng(devices=[trainer.strategy.root_device] if torch.cuda.is_available() else []):
            try:
                with trainer.precision_plugin.train_step_context():
                    loss = task.losses(batch, train=True)["loss"]
                loss.backward()
            finally:
                task.zero_grad(set_to_none=True)
                np.random.set_state(state)

    def _fail(self, shape: str, need: float, free: float) -> DoesNotFit:
        datamodule = "data.max_tokens (a batch's padded positions) or data.batch_size"
        return DoesNotFit(
            f"pre-flight: one training step on the largest batch ({shape}) needs ~{need / GB:.2f} GB, over "
            f"{self.headroom * 100:g}% of the {free / GB:.1f} GB free. Lower {datamodule}, data.segment_seconds or "
            f"the model's size (model.hidden_size, model.num_layers); callbacks.preflight=null skips this check"
        )


def _free_bytes(device: torch.device) -> float:
    if device.type == "cuda":
        return float(torch.cuda.mem_get_info(device)[0])
    return float(psutil.virtual_memory().available)


def _measure(step: Any, device: torch.device, budget: float, fail: Any) -> float:
    """Bytes ``step()`` takes at its peak on ``device``."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        try:
            step()
        except torch.OutOfMemoryError:
            raise fail(float("inf")) from None
        torch.cuda.synchronize(device)
        return float(torch.cuda.max_memory_allocated(device) - base)
    process = psutil.Process()
    base = process.memory_info().rss
    peak, done = [base], threading.Event()

    def watch() -> None:  # samples the resident size; stops the process before it can take the machine
        while not done.is_set():
            rss = process.memory_info().rss
            peak[0] = max(peak[0], rss)
            if rss - base > budget:
                print(f"error: {fail(rss - base)}", file=sys.stderr, flush=True)
                os._exit(1)
            time.sleep(0.002)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        step()
    finally:
        done.set()
        watcher.join()
    return float(max(peak[0], process.memory_info().rss) - base)
