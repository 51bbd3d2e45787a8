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
