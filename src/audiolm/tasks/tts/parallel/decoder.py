"""The audio decoder: the backbone's last hidden state -> logits for every level of a frame.

    hidden: [B, L, H] -> LayerNorm -> FFN (H -> ffn_mult*H -> Q*D) -> [B, L, Q, D] -> head(s) -> [B, L, Q, C]

The feed-forward block gives each level its own D-dim feature (D = H); the output head maps a
level's feature to its C classes (K codes, plus EOS in the AR mode). ``shared_heads`` uses one
head for all levels (levels differ only through their features); otherwise each level has its
own head, which the seed found helps pull each level out of the one hidden state.
"""

from __future__ import annotations

import torch
from torch import nn


class AudioDecoder(nn.Module):
    """Args:
    n_levels, n_classes, hidden_size: Q, C classes per level, H (given by the model).
    shared_heads: one output head for every level (True) or one per level (False).
    ffn_mult: width of the feed-forward block as a multiple of H.
    """

    def __init__(self, n_levels: int, n_classes: int, hidden_size: int, shared_heads: bool = False, ffn_mult: int = 2):
        super().__init__()
        self.n_levels, self.n_classes, self.shared_heads = n_levels, n_classes, shared_heads
        self.norm = nn.LayerNorm(hidden_size)
        self.ffn = nn.Sequential(
            nn.Linear(hidden_size, ffn_mult * hidden_size),
            nn.GELU(),
            nn.Linear(ffn_mult * hidden_size, n_levels * hidden_size),
        )
        self.heads = nn.Parameter(torch.empty(1 if shared_heads else n_levels, n_classes, hidden_size))
        nn.init.normal_(self.heads, std=0.02)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden [..., H] -> logits [..., Q, C]."""
        features = self.ffn(self.norm(hidden)).unflatten(-1, (self.n_levels, -1))  # [..., Q, D]
        return torch.einsum("...qd,qcd->...qc", features, self.heads.expand(self.n_levels, -1, -1))
