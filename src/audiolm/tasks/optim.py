"""Optimiser and learning-rate schedule shared by the tasks.

Weight decay applies to matrices only (not to norms, biases or 1-d SSM parameters), as in
nanoGPT; the schedule is linear warmup, then cosine (or constant) down to ``min_lr_ratio``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from audiolm.errors import ConfigError


def param_groups(module: nn.Module, weight_decay: float) -> list[dict]:
    params = [p for p in module.parameters() if p.requires_grad]
    return [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]


def warmup_schedule(
    warmup_steps: int, total_steps: int, decay: str = "cosine", min_lr_ratio: float = 0.1
) -> Callable[[int], float]:
    """LR multiplier for step ``s``: linear warmup, then ``cosine`` / ``linear`` decay or ``constant``."""
    if decay not in {"cosine", "linear", "constant"}:
        raise ConfigError(f"scheduler.decay must be cosine, linear or constant, got {decay!r}")

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if decay == "constant" or total_steps <= warmup_steps:
            return 1.0
        progress = min((step - warmup_steps) / (total_steps - warmup_steps), 1.0)
        shape = 0.5 * (1 + math.cos(math.pi * progress)) if decay == "cosine" else 1 - progress
        return min_lr_ratio + (1 - min_lr_ratio) * shape

    return factor


def build_optimizer(
    module: nn.Module, optimizer: Callable[..., torch.optim.Optimizer], weight_decay: float, scheduler: dict
) -> dict:
    """Lightning's ``configure_optimizers`` answer: optimiser + per-step LambdaLR."""
    opt = optimizer(param_groups(module, weight_decay))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_schedule(**scheduler))
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
