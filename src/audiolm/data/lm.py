"""Datasets over the token store, and the collate function that pads them.

An item is a window of codes ``[Q, F]``; a batch is ``codes: [B, Q, F_max]`` (zero-padded) with
``frame_mask: [B, F_max]`` (True on real frames). Patterns are applied by the task, not here.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from audiolm.data.samplers import Visit
from audiolm.data.tokens.store import TokenStore
from audiolm.errors import ConfigError


class CodeWindows(Dataset):
    """Items of ``store`` cut to at most ``max_frames`` frames.

    Training draws a random window per visit (``random_crop``, from the visit's own seed); evaluation
    takes the start of each item, so validation figures are repeatable.
    """

    def __init__(
        self,
        store: TokenStore,
        indices: list[int],
        max_frames: int,
        random_crop: bool,
        num_steps: Callable[[int], int] | None = None,
    ):
        if max_frames < 1:
            raise ConfigError(f"data.segment_seconds gives {max_frames} frames; it must be at least one frame")
        self.store, self.indices, self.max_frames, self.random_crop = store, indices, max_frames, random_crop
        frames = [min(store.entries[i]["n_frames"], max_frames) for i in indices]
        # positions the backbone sees (the pattern's steps), for bucketing and the token budget
        self.lengths = [num_steps(f) for f in frames] if num_steps else frames

    @staticmethod
    def collate(items: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        return pad_codes(items)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, key: Visit | int) -> torch.Tensor:
        visit = Visit.of(key)
        codes = self.store.codes(self.indices[visit.index])
        n = codes.shape[1]
        start = 0
        if self.random_crop and n > self.max_frames:
            start = int(visit.rng().integers(0, n - self.max_frames + 1))
        window = np.asarray(codes[:, start : start + self.max_frames], dtype=np.int64)
        return torch.from_numpy(window)


def pad_codes(items: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """[Q, F_i] items -> {"codes": [B, Q, F_max], "frame_mask": [B, F_max]}."""
    q, f_max = items[0].shape[0], max(x.shape[1] for x in items)
    codes = torch.zeros(len(items), q, f_max, dtype=torch.long)
    mask = torch.zeros(len(items), f_max, dtype=torch.bool)
    for b, x in enumerate(items):
        codes[b, :, : x.shape[1]] = x
        mask[b, : x.shape[1]] = True
    return {"codes": codes, "frame_mask": mask}
