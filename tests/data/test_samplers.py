import numpy as np
import pytest

from audiolm.data.samplers import BucketBatchSampler, Visit


def epoch(sampler: BucketBatchSampler) -> list[list[int]]:
    """One epoch of ``sampler`` as dataset positions."""
    return [[visit.index for visit in batch] for batch in sampler]


def test_every_item_once_per_epoch_and_batches_are_length_homogeneous():
    rng = np.random.default_rng(0)
    lengths = rng.integers(10, 1000, size=503)
    sampler = BucketBatchSampler(lengths, batch_size=8, pool_batches=10)
    batches = epoch(sampler)
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
    first, second = epoch(a), epoch(a)
    assert first == epoch(b)
    assert first != second
    # batches do not come in length order (no periodic short-to-long sweeps)
    means = [np.mean(batch) for batch in first]
    assert means != sorted(means)


def test_drop_last_and_no_shuffle():
    sampler = BucketBatchSampler([5, 1, 3, 2, 4], batch_size=2, shuffle=False, drop_last=True)
    assert epoch(sampler) == [[1, 3], [2, 4]]
    assert len(sampler) == 2
    with pytest.raises(ValueError, match="batch_size"):
        BucketBatchSampler([1], batch_size=0)


def test_ddp_ranks_get_disjoint_equal_shares_of_the_same_epoch():
    lengths = np.random.default_rng(0).integers(10, 100, size=101)
    shares = [epoch(BucketBatchSampler(lengths, batch_size=4, seed=3, rank=r, world_size=3)) for r in range(3)]
    assert len({len(s) for s in shares}) == 1 and len(shares[0]) == len(
        BucketBatchSampler(lengths, 4, rank=0, world_size=3)
    )
    seen = [i for share in shares for batch in share for i in batch]
    assert len(seen) == len(set(seen))  # no item on two ranks
    single = epoch(BucketBatchSampler(lengths, batch_size=4, seed=3))
    assert shares[1][0] == single[1]  # the same epoch order, dealt round-robin


def test_a_resumed_sampler_continues_the_epoch_order():
    lengths = list(range(40))
    fresh = BucketBatchSampler(lengths, batch_size=4, seed=1)
    epoch(fresh)
    second_epoch = epoch(fresh)
    assert epoch(BucketBatchSampler(lengths, batch_size=4, seed=1, start_epoch=1)) == second_epoch


def test_a_token_budget_bounds_every_batch_and_leaves_out_what_cannot_fit():
    lengths = np.random.default_rng(0).integers(10, 1000, size=400)
    lengths[:3] = 5000  # longer than the budget on their own
    sampler = BucketBatchSampler(lengths, batch_size=64, max_tokens=4096, pool_batches=4)
    batches = epoch(sampler)
    assert len(batches) == len(sampler)
    assert all(len(b) * lengths[b].max() <= 4096 and len(b) <= 64 for b in batches)
    assert sorted(i for b in batches for i in b) == list(range(3, 400))  # all but the three, once
    # short items share batches: far fewer batches than items
    assert len(batches) < 400 / 4
    # the item cap still holds when the budget would allow more
    assert max(len(b) for b in epoch(BucketBatchSampler([10] * 100, batch_size=8, max_tokens=10_000))) == 8
    with pytest.raises(ValueError, match="max_tokens"):
        BucketBatchSampler([1], batch_size=1, max_tokens=0)


def test_a_restored_sampler_yields_the_rest_of_the_epoch_with_the_same_draws():
    lengths = np.random.default_rng(1).integers(10, 100, size=60)
    straight = BucketBatchSampler(lengths, batch_size=4, seed=7)
    epoch(straight)
    it = iter(straight)
    taken = [next(it) for _ in range(5)]
    straight.consumed = 3  # training took three; two more were fetched ahead
    state = straight.state_dict()
    rest = list(it)
    resumed = BucketBatchSampler(lengths, batch_size=4, seed=7)
    resumed.load_state_dict(state)
    assert len(resumed) == len(taken) + len(rest)
    assert list(resumed) == taken[3:] + rest  # the same visits, seeds included
    assert epoch(resumed) == epoch(straight)  # and the next epoch alike

    whole = BucketBatchSampler(lengths, batch_size=4, seed=7)  # saved after an epoch's last batch
    whole.load_state_dict({"epoch": 0, "consumed": len(straight)})
    assert epoch(whole) == epoch(BucketBatchSampler(lengths, batch_size=4, seed=7, start_epoch=1))
    assert BucketBatchSampler(lengths, 4, start_epoch=3).state_dict() == {"epoch": 3, "consumed": 0}


def test_a_visit_seed_depends_on_run_seed_epoch_and_position_only_when_shuffled():
    train = BucketBatchSampler(list(range(8)), batch_size=8, seed=5)
    first, second = next(iter(train))[0], next(iter(train))[0]
    assert first.seed == (5, 0, first.index) and second.seed == (5, 1, second.index)
    val = BucketBatchSampler(list(range(8)), batch_size=8, seed=5, shuffle=False)
    assert list(val) == list(val)  # validation draws the same every time
    assert Visit.of(3) == Visit(3, (0, 0, 3))
