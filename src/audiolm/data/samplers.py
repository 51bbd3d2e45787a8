"""Batch samplers.

``BucketBatchSampler`` groups items of similar length so padding stays small, then shuffles the
batches: a plain length-sorted order gives periodic loss spikes (every epoch sweeps from short to
long), so buckets are drawn in random order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch.distributed as dist
from torch.utils.data import Sampler


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of dataset positions with similar ``lengths``; random order when ``shuffle``.

    Items are shuffled, split into pools of ``pool_batches`` batches, sorted by length inside a
    pool and cut into batches; the batches of all pools are then shuffled together.

    Under DDP every rank draws the same epoch order and keeps every ``world_size``-th batch, the
    same number on each rank (rank and world size come from ``torch.distributed`` unless given).
    ``start_epoch`` lets a resumed run continue the order instead of replaying epoch 0.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        shuffle: bool = True,
        pool_batches: int = 50,
        drop_last: bool = False,
        seed: int = 0,
        start_epoch: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.lengths = np.asarray(lengths)
        self.batch_size, self.shuffle, self.pool, self.drop_last, self.seed = (
            batch_size,
            shuffle,
            pool_batches,
            drop_last,
            seed,
        )
        self.epoch = start_epoch
        self.rank, self.world_size = rank, world_size

    def _replica(self) -> tuple[int, int]:
        if self.rank is not None and self.world_size is not None:
            return self.rank, self.world_size
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1

    def _batches(self) -> list[list[int]]:
        rng = np.random.default_rng(self.seed + self.epoch)
        order = rng.permutation(len(self.lengths)) if self.shuffle else np.arange(len(self.lengths))
        pool_size = self.batch_size * self.pool
        batches = []
        for start in range(0, len(order), pool_size):
            pool = order[start : start + pool_size]
            pool = pool[np.argsort(self.lengths[pool], kind="stable")]
            batches += [pool[i : i + self.batch_size].tolist() for i in range(0, len(pool), self.batch_size)]
        if self.drop_last:
            batches = [b for b in batches if len(b) == self.batch_size]
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        rank, world = self._replica()
        return batches[rank::world][: len(batches) // world] if world > 1 else batches

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._batches()
        self.epoch += 1
        yield from batches

    def __len__(self) -> int:
        n = len(self.lengths)
        total = n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        return total // self._replica()[1]
