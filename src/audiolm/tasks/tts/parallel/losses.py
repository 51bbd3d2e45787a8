"""Per-level token losses shared by the NAR and AR modes."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from audiolm.metrics.levels import level_sums


def level_losses(
    logits: torch.Tensor, targets: torch.Tensor, scored: torch.Tensor, level_weights: torch.Tensor
) -> dict[str, torch.Tensor]:
    """The weighted mean NLL over scored tokens (``loss``) and, per level q, ``nll_sum_q{q}``,
    ``correct_q{q}`` and ``count_q{q}`` for token-weighted logging.

    logits: [B, F, Q, C]; targets: [B, F, Q] (anything where not scored); scored: [B, F, Q] bool;
    level_weights: [Q] (mean 1 for an unweighted mean).
    """
    nll = F.cross_entropy(logits.flatten(0, -2).float(), targets.flatten().clamp(min=0), reduction="none").view_as(
        targets
    )
    weight = level_weights.to(nll.dtype) * scored
    correct = logits.detach().argmax(-1) == targets
    levels = torch.arange(targets.shape[-1], device=targets.device).expand_as(targets)
    out = level_sums(nll.detach(), correct, scored, levels, range(targets.shape[-1]))
    out["loss"] = (nll * weight).sum() / weight.sum().clamp_min(1e-8)
    return out
