"""Projectors: encoder frames [B, F, D] (+ valid lengths [B]) -> LLM input embeddings [B, N, H] (+ lengths [B]).

A projector is a pooling (how many audio positions the LLM sees) followed by a LayerNorm and a
head (how frames become embeddings):

- ``AdaptivePool(n_out)``: every clip becomes exactly ``n_out`` positions, averaged over its valid
  frames. The seed's recipe is ``AdaptivePool(250)`` with a linear head.
- ``WindowPool(window)``: the mean of each ``window`` consecutive frames (window-level pooling, as
  SLAM-LLM's downsampling projector). Positions scale with the clip's length, which makes it the
  natural partner of the encoder's ``trim``: a 2 s clip gives 100 frames / window.

``hidden=None`` gives the seed's linear head (no bias); ``hidden=<int>`` a 2-layer MLP with GELU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class AdaptivePool(nn.Module):
    """Each clip's valid frames [F_i, D] averaged into exactly ``n_out`` positions."""

    def __init__(self, n_out: int = 250):
        super().__init__()
        self.n_out = n_out

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: [B, F, D] -> [B, n_out, D], lengths all ``n_out``."""
        if bool((lengths == x.shape[1]).all()):
            pooled = F.adaptive_avg_pool1d(x.transpose(1, 2), self.n_out).transpose(1, 2)
        else:  # per clip, so the padding of a batch never leaks into a clip's average
            pooled = torch.stack(
                [F.adaptive_avg_pool1d(x[i, :n].T[None], self.n_out)[0].T for i, n in enumerate(lengths.tolist())]
            )
        return pooled, torch.full_like(lengths, self.n_out)


class WindowPool(nn.Module):
    """Means of ``window`` consecutive frames: [B, F, D] -> [B, ceil(F / window), D]."""

    def __init__(self, window: int = 5):
        super().__init__()
        self.window = window

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, f, d = x.shape
        n = -(-f // self.window)
        valid = (torch.arange(f, device=x.device)[None] < lengths[:, None]).to(x.dtype)  # [B, F]
        pad = n * self.window - f
        sums = F.pad(x * valid[..., None], (0, 0, 0, pad)).view(b, n, self.window, d).sum(2)
        counts = F.pad(valid, (0, pad)).view(b, n, self.window).sum(2, keepdim=True)
        out_lengths = torch.div(lengths + self.window - 1, self.window, rounding_mode="floor")
        return sums / counts.clamp(min=1), out_lengths


class Projector(nn.Module):
    """pooling -> LayerNorm -> linear (``hidden=None``) or Linear-GELU-Linear head."""

    def __init__(self, in_dim: int, out_dim: int, pooling: nn.Module, hidden: int | None = None):
        super().__init__()
        self.pooling = pooling
        self.norm = nn.LayerNorm(in_dim)
        if hidden is None:
            self.head = nn.Linear(in_dim, out_dim, bias=False)
        else:
            self.head = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, out_dim))

    def forward(self, frames: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """frames: [B, F, D], lengths: [B] -> embeddings [B, N, H], lengths [B]."""
        pooled, lengths = self.pooling(frames.to(self.norm.weight.dtype), lengths)
        return self.head(self.norm(pooled)), lengths
