"""Per-level loss and accuracy bookkeeping, shared by every task over codec levels.

A step's figures are sums, not means: ``nll_sum_q{q}``, ``correct_q{q}`` and ``count_q{q}`` for each
codebook level ``q``. Sums add up across passes and batches, and ``log_levels`` logs them weighted
by their token counts, so epoch values are per-token figures over the corpus, not means of means.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import lightning as L
import torch

KEYS = ("nll_sum_q", "correct_q", "count_q")


def level_sums(
    nll: torch.Tensor, correct: torch.Tensor, scored: torch.Tensor, levels: torch.Tensor, present: Iterable[int]
) -> dict[str, torch.Tensor]:
    """Sums per level ``q`` in ``present`` over the scored positions. nll, correct, scored and levels
    share one shape; ``levels`` holds each position's codebook level."""
    out = {}
    for q in present:
        at = scored & (levels == q)
        out[f"nll_sum_q{q}"] = nll[at].sum()
        out[f"correct_q{q}"] = correct[at].sum()
        out[f"count_q{q}"] = at.sum()
    return out


def add_sums(total: dict[str, torch.Tensor], more: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``total`` with ``more``'s level sums added key by key (other keys of ``more`` are left out)."""
    for key, value in more.items():
        if key.startswith(KEYS):
            total[key] = total.get(key, 0) + value
    return total


def is_level_key(key: str) -> bool:
    return key.startswith(KEYS)


def log_levels(
    module: L.LightningModule,
    prefix: str,
    out: Mapping[str, torch.Tensor],
    n_levels: int,
    groups: Mapping[str, Iterable[int]] | None = None,
) -> None:
    """Log ``{prefix}/{group}nll`` and ``acc`` for each group of levels (default: all of them, as
    ``{prefix}/nll``, with ``bits_per_token``), then ``nll_q{q}`` / ``acc_q{q}`` per level. Levels
    without tokens in ``out`` are skipped. Validation figures are synced across DDP ranks, so
    checkpoints monitor the global ``val/nll``."""
    sync = prefix == "val"
    for name, levels in (groups or {"": range(n_levels)}).items():
        present = [q for q in levels if f"count_q{q}" in out]
        n = int(sum(out[f"count_q{q}"] for q in present)) if present else 0
        if not n:
            continue
        nll = sum(out[f"nll_sum_q{q}"] for q in present) / n
        module.log(f"{prefix}/{name}nll", nll, prog_bar=name == "", batch_size=n, sync_dist=sync)
        module.log(
            f"{prefix}/{name}acc", sum(out[f"correct_q{q}"] for q in present).float() / n, batch_size=n, sync_dist=sync
        )
        if name == "":
            module.log(f"{prefix}/bits_per_token", nll / math.log(2), batch_size=n, sync_dist=sync)
    for q in range(n_levels):
        n = int(out.get(f"count_q{q}", 0))
        if n:
            module.log(f"{prefix}/nll_q{q}", out[f"nll_sum_q{q}"] / n, batch_size=n, sync_dist=sync)
            module.log(f"{prefix}/acc_q{q}", out[f"correct_q{q}"].float() / n, batch_size=n, sync_dist=sync)
