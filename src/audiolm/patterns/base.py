"""Codebook patterns: how a grid of codes becomes a sequence of decoding steps, and back.

    codes: [B, Q, F]  (batch, codebook level, frame)
    steps: [B, S, M]  (batch, step, stream); each stream has ``vocab_size`` ids

A pattern is exact and invertible: ``decode(encode(codes)) == codes``. It also tells the
task which codebook level sits at each position (for per-level metrics; -1 marks filler ids
that carry no code) and which id range is legal at each position (for constrained sampling).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch


class Pattern(ABC):
    #: number of parallel token streams per step (1 for flatten, Q for delay/parallel)
    n_streams: int
    #: ids per stream, including the pattern's own filler id if it has one
    vocab_size: int

    def __init__(self, n_codebooks: int, codebook_size: int):
        if n_codebooks < 1 or codebook_size < 2:
            raise ValueError(
                f"{type(self).__name__}: need n_codebooks >= 1 and codebook_size >= 2, "
                f"got {n_codebooks} and {codebook_size}"
            )
        self.n_codebooks = n_codebooks
        self.codebook_size = codebook_size

    @abstractmethod
    def num_steps(self, n_frames: int) -> int:
        """Steps that hold ``n_frames`` whole frames."""

    @abstractmethod
    def num_frames(self, n_steps: int) -> int:
        """Whole frames recoverable from ``n_steps`` steps."""

    @abstractmethod
    def encode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes: [B, Q, F] -> steps: [B, num_steps(F), M]."""

    @abstractmethod
    def decode(self, steps: torch.Tensor) -> torch.Tensor:
        """steps: [B, S, M] -> codes: [B, Q, num_frames(S)]."""

    @abstractmethod
    def levels(self, n_steps: int) -> torch.Tensor:
        """[S, M] long: codebook level at each position, -1 for filler ids."""

    @abstractmethod
    def prefix_steps(self, n_frames: int) -> int:
        """Steps fully determined by the first ``n_frames`` frames (a prompt's prefix)."""

    def id_ranges(self, n_steps: int) -> torch.Tensor:
        """[S, M, 2] long: legal ids ``[lo, hi)`` at each position, derived from ``levels``."""
        levels = self.levels(n_steps)
        lo, hi = self._level_range(levels.clamp(min=0))
        filler = levels < 0
        if filler.any():
            lo = torch.where(filler, torch.full_like(lo, self.filler_id), lo)
            hi = torch.where(filler, lo + 1, hi)
        return torch.stack([lo, hi], dim=-1)

    #: the id that stands where a stream has no code; None for patterns without such positions
    filler_id: int | None = None

    def _level_range(self, level: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Legal id range for a code of ``level`` (per-stream vocabularies: [0, K))."""
        return torch.zeros_like(level), torch.full_like(level, self.codebook_size)

    def _check(self, codes: torch.Tensor) -> None:
        if codes.dim() != 3 or codes.shape[1] != self.n_codebooks:
            raise ValueError(
                f"{type(self).__name__}: expected codes [B, {self.n_codebooks}, F], got {tuple(codes.shape)}"
            )

    def encode_padded(self, codes: torch.Tensor, frame_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """codes: [B, Q, F] zero-padded, frame_mask: [B, F] -> (steps [B, S, M], real [B, S, M]).

        Positions that hold no real code get the filler id, so every item's steps are exactly
        those of its own unpadded encoding (then padding) and its loss does not depend on the
        batch it is in. Patterns without a filler only pad after an item's last real step.
        """
        steps, real = self.encode(codes), self.step_mask(frame_mask)
        if self.filler_id is not None:
            steps = steps.masked_fill(~real, self.filler_id)
        return steps, real

    def step_mask(self, frame_mask: torch.Tensor) -> torch.Tensor:
        """frame_mask: [B, F] bool (True = real frame) -> [B, S, M] bool: positions holding a real code.

        Encodes the mask itself as codes (1 = real, 0 = padding) so any pattern's layout
        carries over; filler positions are never real.
        """
        b, f = frame_mask.shape
        ids = self.encode(frame_mask[:, None, :].expand(b, self.n_codebooks, f).long())
        lo = self.id_ranges(ids.shape[1]).to(ids.device)[..., 0]
        return (self.levels(ids.shape[1]).to(ids.device) >= 0) & (ids - lo == 1)
