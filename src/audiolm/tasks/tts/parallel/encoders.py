"""Audio encoders: Q codebook ids per frame -> one vector per frame.

    ids: [B, F, Q] (id ``v`` of level ``q``)  ->  [B, F, H]

``AudioEncoder`` is the seed's "v2" encoder: each level has its own embedding table plus a
learned level-position embedding; the levels, stacked, pass through a pre-LayerNorm residual
feed-forward block, and are then summed with learned (softmax) level weights. Spelling out how
levels combine, rather than leaving it to the backbone's first layer, helps codecs whose levels
have no inherent order of importance (FSQ). ``SummedAudioEncoder`` is the plain baseline: the
sum of the levels' embeddings, as VALL-E and the audio LM embed frames.

Both are built by the model from a Hydra partial (``task.model.audio_encoder``) with
``n_levels``, ``n_ids`` (ids per level) and ``hidden_size``.
"""

from __future__ import annotations

import torch
from torch import nn


class _LevelTables(nn.Module):
    """One embedding table per level, stored as one table so a frame is one lookup."""

    def __init__(self, n_levels: int, n_ids: int, hidden_size: int):
        super().__init__()
        self.n_levels, self.n_ids = n_levels, n_ids
        self.table = nn.Embedding(n_levels * n_ids, hidden_size)
        nn.init.normal_(self.table.weight, std=0.02)
        self.register_buffer("offsets", torch.arange(n_levels) * n_ids, persistent=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ids [B, F, Q] -> per-level embeddings [B, F, Q, H]."""
        if ids.shape[-1] != self.n_levels:
            raise ValueError(f"expected {self.n_levels} levels per frame, got ids of shape {tuple(ids.shape)}")
        return self.table(ids + self.offsets)


class SummedAudioEncoder(nn.Module):
    """The baseline: a frame is the sum of its levels' embeddings."""

    def __init__(self, n_levels: int, n_ids: int, hidden_size: int):
        super().__init__()
        self.levels = _LevelTables(n_levels, n_ids, hidden_size)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ids [B, F, Q] -> [B, F, H]."""
        return self.levels(ids).sum(-2)


class AudioEncoder(nn.Module):
    """Per-level embeddings + level positions -> residual FFN over each level -> learned level weights -> sum.

    Args:
        n_levels, n_ids, hidden_size: Q, ids per level, H (given by the model).
        ffn_mult: width of the feed-forward block as a multiple of H.
    """

    def __init__(self, n_levels: int, n_ids: int, hidden_size: int, ffn_mult: int = 2):
        super().__init__()
        self.levels = _LevelTables(n_levels, n_ids, hidden_size)
        self.level_position = nn.Parameter(torch.randn(n_levels, hidden_size) * 0.02)
        self.norm = nn.LayerNorm(hidden_size)
        self.ffn = nn.Sequential(
            nn.Linear(hidden_size, ffn_mult * hidden_size), nn.GELU(), nn.Linear(ffn_mult * hidden_size, hidden_size)
        )
        # Equal weights at the start (softmax of zeros): every level counts the same until training says otherwise.
        self.level_logits = nn.Parameter(torch.zeros(n_levels))

    @property
    def level_weights(self) -> torch.Tensor:
        """[Q] weights of the levels in the sum (positive, summing to 1)."""
        return self.level_logits.softmax(-1)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ids [B, F, Q] -> [B, F, H]."""
        x = self.levels(ids) + self.level_position  # [B, F, Q, H]
        x = x + self.ffn(self.norm(x))
        # The softmax weights average the levels; scaling by Q keeps the sum's magnitude of the baseline.
        return torch.einsum("bfqh,q->bfh", x, self.level_weights * self.levels.n_levels)
