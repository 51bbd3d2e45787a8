"""Batch samplers, and the train loader that resumes mid-epoch.

``BucketBatchSampler`` groups items of similar length so padding stays small, then shuffles the
batches: a plain length-sorted order gives periodic loss spikes (every epoch sweeps from short to
long), so buckets are drawn in random order. With ``max_tokens`` a batch holds as many items as fit
that many padded positions, so memory follows the budget whatever the codec's frame rate.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch.distributed as dist
from torch.utils.data import DataLoader, Sampler

log = logging.getLogger("audiolm")


class Visit(NamedTuple):
    """One draw of a dataset item: its position and the seed of the random choices made for it (crops,
    prompts). The seed is fixed by the run's seed, the epoch and the position, so a run resumed
    mid-epoch draws exactly what an unbroken one does, whenever the loader happens to fetch it."""

    index: int
    seed: tuple[int, int, int]

    @classmethod
    def of(cls, key: Visit | int) -> Visit:
        """A plain position (a direct ``dataset[i]``) draws as validation does: from the position alone."""
        return key if isinstance(key, Visit) else cls(key, (0, 0, key))

    def rng(self) -> np.random.Generator:
        return np.random.default_rng(self.seed)


class BucketBatchSampler(Sampler[list[Visit]]):
    """Batches of ``Visit``s of dataset positions with similar ``lengths``; random order when ``shuffle``.

    Items are shuffled, split into pools of ``pool_batches * batch_size`` items, sorted by length
    inside a pool and cut into batches of at most ``batch_size`` items and, when ``max_tokens`` is
    set, at most ``max_tokens`` padded positions (items x the longest one); an item longer than
    ``max_tokens`` on its own is left out, with a warning. The batches of all pools are then shuffled.

    Under DDP every rank draws the same epoch order and keeps every ``world_size``-th batch, the
    same number on each rank (rank and world size come from ``torch.distributed`` unless given).
    ``start_epoch`` lets a resumed run continue the order instead of replaying epoch 0;
    ``state_dict``/``load_state_dict`` carry the position inside an epoch, counted in ``consumed``
    by whoever trains on the batches (the iterator runs ahead of training by the loader's prefetch).
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
        max_tokens: int | None = None,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if max_tokens is not None and max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1 (or null for fixed batches), got {max_tokens}")
        self.lengths = np.asarray(lengths)
        self.batch_size, self.shuffle, self.pool, self.drop_last = batch_size, shuffle, pool_batches, drop_last
        self.seed, self.max_tokens = seed, max_tokens
        self.rank, self.world_size = rank, world_size
        self.epoch, self.skip, self.consumed = start_epoch, 0, 0
        self.current: int | None = None  # the epoch being iterated
        self.too_long = 0 if max_tokens is None else int((self.lengths > max_tokens).sum())
        if self.too_long:
            log.warning(
                "%d of %d items are longer than data.max_tokens=%d positions on their own and are left out "
                "(raise data.max_tokens or lower data.segment_seconds)",
                self.too_long,
                len(self.lengths),
                max_tokens,
            )

    def _replica(self) -> tuple[int, int]:
        if self.rank is not None and self.world_size is not None:
            return self.rank, self.world_size
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1

    def _cut(self, pool: np.ndarray) -> list[list[int]]:
        """A length-sorted pool -> batches within ``batch_size`` items and ``max_tokens`` padded positions."""
        if self.max_tokens is None:
            return [pool[i : i + self.batch_size].tolist() for i in range(0, len(pool), self.batch_size)]
        batches, batch = [], []
        for i in pool[self.lengths[pool] <= self.max_tokens].tolist():
            # sorted ascending, so the newest item is the longest of the batch
            if batch and (len(batch) == self.batch_size or (len(batch) + 1) * self.lengths[i] > self.max_tokens):
                batches.append(batch)
                batch = []
            batch.append(i)
        return batches + ([batch] if batch else [])

    def _batches(self, epoch: int) -> list[list[int]]:
        rng = np.random.default_rng(self.seed + epoch)
        order = rng.permutation(len(self.lengths)) if self.shuffle else np.arange(len(self.lengths))
        pool_size = self.batch_size * self.pool
        batches = []
        for start in range(0, len(order), pool_size):
            pool = order[start : start + pool_size]
            batches += self._cut(pool[np.argsort(self.lengths[pool], kind="stable")])
        if self.drop_last:
            batches = [b for b in batches if len(b) == self.batch_size]
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        rank, world = self._replica()
        return batches[rank::world][: len(batches) // world] if world > 1 else batches

    def __iter__(self) -> Iterator[list[Visit]]:
        epoch, skip = self.epoch, self.skip
        self.epoch, self.skip, self.consumed, self.current = epoch + 1, 0, skip, epoch
        draw = epoch if self.shuffle else 0  # an unshuffled (validation) order draws the same every time
        for batch in self._batches(epoch)[skip:]:
            yield [Visit(i, (self.seed, draw, i)) for i in batch]

    def largest_batch(self) -> list[Visit]:
        """The coming epoch's batch with the most padded positions (what a pre-flight check measures)."""
        batches = self._batches(self.epoch)
        biggest = max(batches, key=lambda b: len(b) * self.lengths[b].max(), default=[])
        return [Visit(i, (self.seed, 0, i)) for i in biggest]

    def __len__(self) -> int:
        """Batches in the coming epoch (a token budget makes the count depend on the epoch's pools)."""
        if self.max_tokens is not None:
            return len(self._batches(self.epoch))
        n = len(self.lengths)
        total = n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        return total // self._replica()[1]

    def state_dict(self) -> dict[str, int]:
        """The epoch being iterated and the batches of it already trained on."""
        if self.current is None:
            return {"epoch": self.epoch, "consumed": 0}
        return {"epoch": self.current, "consumed": self.consumed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue ``state``'s epoch after its consumed batches (the next ``iter`` starts there); an epoch
        consumed whole continues with the next one."""
        epoch, consumed = state["epoch"], state["consumed"]
        if consumed >= len(self._batches(epoch)):
            epoch, consumed = epoch + 1, 0
        self.epoch, self.skip, self.consumed, self.current = epoch, consumed, consumed, None


class ResumableLoader(DataLoader):
    """A train DataLoader whose position Lightning checkpoints (it saves and restores the state of a
    loader that has ``state_dict``/``load_state_dict``): its ``BucketBatchSampler``'s epoch and the
    batches of it consumed, so a run resumed mid-epoch sees exactly the batches it had not seen."""

    def state_dict(self) -> dict[str, Any]:
        return self.batch_sampler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.batch_sampler.load_state_dict(state)
