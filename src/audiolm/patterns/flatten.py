"""Flatten: frame by frame, level by level, one stream (the MarcRandBot layout).

Level ``q`` uses ids ``[q*K, (q+1)*K)`` so one vocabulary covers every level:

    frame 0: c[0,0], K + c[1,0], 2K + c[2,0], ..., frame 1: c[0,1], ...
"""

from __future__ import annotations

import torch
from einops import rearrange

from audiolm.patterns.base import Pattern


class FlattenPattern(Pattern):
    n_streams = 1

    @property
    def vocab_size(self) -> int:
        return self.n_codebooks * self.codebook_size

    def num_steps(self, n_frames: int) -> int:
        return n_frames * self.n_codebooks

    def num_frames(self, n_steps: int) -> int:
        return n_steps // self.n_codebooks

    def prefix_steps(self, n_frames: int) -> int:
        return self.num_steps(n_frames)

    def _offsets(self, device: torch.device) -> torch.Tensor:
        return torch.arange(self.n_codebooks, device=device) * self.codebook_size

    def encode(self, codes: torch.Tensor) -> torch.Tensor:
        self._check(codes)
        ids = codes + self._offsets(codes.device)[None, :, None]
        return rearrange(ids, "b q f -> b (f q) 1")

    def decode(self, steps: torch.Tensor) -> torch.Tensor:
        n_frames = self.num_frames(steps.shape[1])
        ids = rearrange(steps[:, : n_frames * self.n_codebooks, 0], "b (f q) -> b q f", q=self.n_codebooks)
        return ids - self._offsets(steps.device)[None, :, None]

    def levels(self, n_steps: int) -> torch.Tensor:
        return (torch.arange(n_steps) % self.n_codebooks)[:, None]

    def _level_range(self, level: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return level * self.codebook_size, (level + 1) * self.codebook_size
