"""Delay (MusicGen): Q streams, level ``q`` shifted right by ``q`` steps.

One step predicts every level at once, yet level ``q`` of frame ``f`` is still produced after
levels ``< q`` of that frame. Positions outside the shifted grid hold the filler id ``K``:

    step:      0     1     2     3
    stream 0:  c0,0  c0,1  c0,2  K
    stream 1:  K     c1,0  c1,1  c1,2
"""

from __future__ import annotations

import torch

from audiolm.patterns.base import Pattern


class DelayPattern(Pattern):
    @property
    def n_streams(self) -> int:
        return self.n_codebooks

    @property
    def vocab_size(self) -> int:
        return self.codebook_size + 1

    def __init__(self, n_codebooks: int, codebook_size: int):
        super().__init__(n_codebooks, codebook_size)
        self.filler_id = codebook_size

    def num_steps(self, n_frames: int) -> int:
        return n_frames + self.n_codebooks - 1 if n_frames > 0 else 0

    def num_frames(self, n_steps: int) -> int:
        return max(n_steps - self.n_codebooks + 1, 0)

    def prefix_steps(self, n_frames: int) -> int:
        return n_frames

    def encode(self, codes: torch.Tensor) -> torch.Tensor:
        self._check(codes)
        b, q, f = codes.shape
        steps = codes.new_full((b, self.num_steps(f), q), self.filler_id)
        for level in range(q):
            steps[:, level : level + f, level] = codes[:, level]
        return steps

    def decode(self, steps: torch.Tensor) -> torch.Tensor:
        f = self.num_frames(steps.shape[1])
        return torch.stack([steps[:, lv : lv + f, lv] for lv in range(self.n_codebooks)], dim=1)

    def levels(self, n_steps: int) -> torch.Tensor:
        f = self.num_frames(n_steps)
        step = torch.arange(n_steps)[:, None]
        level = torch.arange(self.n_codebooks)[None, :]
        frame = step - level
        return torch.where((frame >= 0) & (frame < f), level.expand(n_steps, -1), torch.full_like(frame, -1))
