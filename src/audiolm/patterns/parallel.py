"""Parallel: every level of a frame in one step, no shift (all codebooks per step)."""

from __future__ import annotations

import torch
from einops import rearrange

from audiolm.patterns.base import Pattern


class ParallelPattern(Pattern):
    @property
    def n_streams(self) -> int:
        return self.n_codebooks

    @property
    def vocab_size(self) -> int:
        return self.codebook_size

    def num_steps(self, n_frames: int) -> int:
        return n_frames

    def num_frames(self, n_steps: int) -> int:
        return n_steps

    def prefix_steps(self, n_frames: int) -> int:
        return n_frames

    def encode(self, codes: torch.Tensor) -> torch.Tensor:
        self._check(codes)
        return rearrange(codes, "b q f -> b f q")

    def decode(self, steps: torch.Tensor) -> torch.Tensor:
        return rearrange(steps, "b f q -> b q f")

    def levels(self, n_steps: int) -> torch.Tensor:
        return torch.arange(self.n_codebooks).expand(n_steps, -1).clone()
