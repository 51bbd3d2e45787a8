"""Masking for the NAR mode: which response units are masked in training, and how many stay masked
after each demasking step at inference.

A *unit* is a whole timestep (all Q levels of a frame) with ``mask_unit=timestep``, or one code
(one level of one frame) with ``mask_unit=level``. Training masks a share ``ratio`` of an item's
units (at least one, so every item has a loss); the ratio is fixed or drawn per item on MaskGIT's
cosine schedule (``ratio = cos(pi/2 * u)``, u uniform). Inference starts from everything masked
and, after step s of N, leaves ``floor(U * cos(pi/2 * (s+1)/N))`` of the U units masked (none after
the last step): few units are accepted early, while little is known, and many late.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from audiolm.errors import ConfigError

MASK_UNITS = ("timestep", "level")
RATIO_SAMPLERS: dict[str, Callable[[float, int, torch.Generator | None], torch.Tensor]] = {
    "fixed": lambda ratio, n, generator: torch.full((n,), ratio),
    "cosine": lambda ratio, n, generator: torch.cos(0.5 * math.pi * torch.rand(n, generator=generator)),
}


def check_masking(mask_unit: str, ratio_sampling: str, mask_ratio: float) -> None:
    if mask_unit not in MASK_UNITS:
        raise ConfigError(f"task.model.mode.mask_unit must be one of {list(MASK_UNITS)}, got {mask_unit!r}")
    if ratio_sampling not in RATIO_SAMPLERS:
        raise ConfigError(
            f"task.model.mode.ratio_sampling must be one of {sorted(RATIO_SAMPLERS)}, got {ratio_sampling!r}"
        )
    if not 0 < mask_ratio <= 1:
        raise ConfigError(f"task.model.mode.mask_ratio must be in (0, 1], got {mask_ratio}")


def training_mask(
    lengths: torch.Tensor,
    n_levels: int,
    ratios: torch.Tensor,
    per_level: bool,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Masked positions [B, F_max, Q] (bool) of items with ``lengths`` [B] frames; ``ratios`` [B] in (0, 1].

    Exactly ``max(1, round(ratio * U_b))`` of item b's U_b units are masked, chosen uniformly.
    """
    f_max = int(lengths.max())
    shape = (len(lengths), f_max, n_levels) if per_level else (len(lengths), f_max)
    frames = torch.arange(f_max)[None] < lengths[:, None]
    real = frames[..., None].expand(shape) if per_level else frames
    n_units = lengths * (n_levels if per_level else 1)
    n_masked = (ratios * n_units).round().long().clamp(min=1)
    scores = torch.rand(shape, generator=generator).masked_fill(~real, 2.0)  # padding is never picked
    rank = scores.flatten(1).argsort(1).argsort(1).view(shape)
    masked = rank < n_masked.view(-1, *[1] * (len(shape) - 1))
    return masked if per_level else masked[..., None].expand(-1, -1, n_levels)


def demask_schedule(n_units: int, steps: int) -> list[int]:
    """Units still masked after each of ``steps`` demasking steps over ``n_units`` (non-increasing, ends at 0)."""
    return [int(n_units * math.cos(0.5 * math.pi * (s + 1) / steps)) for s in range(steps - 1)] + [0]


def keep_least_confident(scores: torch.Tensor, masked: torch.Tensor, n_masked: int) -> torch.Tensor:
    """The ``n_masked`` least confident of the still-masked units stay masked: scores, masked [B, U] -> masked [B, U].

    Accepted units (``masked`` False) are never masked again: they rank as infinitely confident, and
    ``n_masked`` never exceeds the units masked now (the schedule does not increase).
    """
    order = scores.float().masked_fill(~masked, float("inf")).argsort(dim=1, stable=True)
    out = torch.zeros_like(masked)
    return out.scatter(1, order[:, :n_masked], True)
