import numpy as np
import pytest

from audiolm.data.samplers import BucketBatchSampler


def test_every_item_once_per_epoch_and_batches_are_length_homogeneous():
    rng = np.random.default_rng(0)
    lengths = rng.integers(10, 1000, size=503)
    sampler = BucketBatchSampler(lengths, batch_size=8, pool_batches=10)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 63
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(503))
    # sorting inside pools keeps padding far below random batching
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    random_spread = np.mean([np.ptp(lengths[rng.permutation(503)[:8]]) for _ in range(100)])
    assert spread < random_spread / 3


def test_batch_order_changes_between_epochs_but_not_between_runs():
    lengths = list(range(100))
    a = BucketBatchSampler(lengths, batch_size=4, seed=1)
    b = BucketBatchSampler(lengths, batch_size=4, seed=1)
    first, second = list(a), list(a)
    assert first == list(b)
    assert first != second
    # batches do not come in length order (no periodic short-to-long sweeps)
    means = [np.mean(batch) for batch in first]
    assert means != sorted(means)


def test_drop_last_and_no_shuffle():
    sampler = BucketBatchSampler([5, 1, 3, 2, 4], batch_size=2, shuffle=False, drop_last=True)
    assert list(sampler) == [[1, 3], [2, 4]]
    assert len(sampler) == 2
    with pytest.raises(ValueError, match="batch_size"):
        BucketBatchSampler([1], batch_size=0)


def test_ddp_ranks_get_disjoint_equal_shares_of_the_same_epoch():
    lengths = np.random.default_rng(0).integers(10, 100, size=101)
    shares = [list(BucketBatchSampler(lengths, batch_size=4, seed=3, rank=r, world_size=3)) for r in range(3)]
    assert len({len(s) for s in shares}) == 1 and len(shares[0]) == len(
        BucketBatchSampler(lengths, 4, rank=0, world_size=3)
    )
    seen = [i for share in shares for batch in share for i in batch]
    assert len(seen) == len(set(seen))  # no item on two ranks
    single = list(BucketBatchSampler(lengths, batch_size=4, seed=3))
    assert shares[1][0] == single[1]  # the same epoch order, dealt round-robin


def test_a_resumed_sampler_continues_the_epoch_order():
    lengths = list(range(40))
    fresh = BucketBatchSampler(lengths, batch_size=4, seed=1)
    list(fresh)
    second_epoch = list(fresh)
    assert list(BucketBatchSampler(lengths, batch_size=4, seed=1, start_epoch=1)) == second_epoch
