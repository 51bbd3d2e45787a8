import pytest
import torch

from audiolm.patterns import DelayPattern, FlattenPattern, ParallelPattern

PATTERNS = [FlattenPattern, DelayPattern, ParallelPattern]


def random_codes(b=3, q=4, f=7, k=11, seed=0):
    return torch.randint(0, k, (b, q, f), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("cls", PATTERNS)
@pytest.mark.parametrize("q,f", [(1, 1), (1, 9), (4, 1), (4, 7), (8, 13)])
def test_round_trip_is_exact(cls, q, f):
    pattern = cls(n_codebooks=q, codebook_size=11)
    codes = random_codes(q=q, f=f)
    steps = pattern.encode(codes)
    assert steps.shape == (3, pattern.num_steps(f), pattern.n_streams)
    assert pattern.num_frames(steps.shape[1]) == f
    assert torch.equal(pattern.decode(steps), codes)


@pytest.mark.parametrize("cls", PATTERNS)
def test_every_id_is_in_its_legal_range_and_vocab(cls):
    pattern = cls(n_codebooks=4, codebook_size=11)
    steps = pattern.encode(random_codes())
    ranges = pattern.id_ranges(steps.shape[1])
    assert ((steps >= ranges[..., 0]) & (steps < ranges[..., 1])).all()
    assert steps.max() < pattern.vocab_size


@pytest.mark.parametrize("cls", PATTERNS)
def test_levels_name_the_codebook_of_each_position(cls):
    pattern = cls(n_codebooks=4, codebook_size=11)
    codes = torch.arange(4)[None, :, None].expand(1, 4, 6) + 0  # code value == its level
    steps = pattern.encode(codes)
    levels = pattern.levels(steps.shape[1])
    lo = pattern.id_ranges(steps.shape[1])[..., 0]
    code_positions = levels >= 0
    # an id minus its range start is the code; here the code equals the level
    assert torch.equal((steps[0] - lo)[code_positions], levels[code_positions])
    # every code appears exactly once
    assert int(code_positions.sum()) == 4 * 6


@pytest.mark.parametrize("cls", PATTERNS)
def test_prefix_steps_are_determined_by_the_prompt(cls):
    pattern = cls(n_codebooks=4, codebook_size=11)
    full = random_codes(f=10)
    p = pattern.prefix_steps(6)
    assert torch.equal(pattern.encode(full[..., :6])[:, :p], pattern.encode(full)[:, :p])


def test_flatten_layout_and_vocab_offsets():
    pattern = FlattenPattern(n_codebooks=2, codebook_size=10)
    codes = torch.tensor([[[1, 2], [3, 4]]])  # [B=1, Q=2, F=2]
    assert pattern.encode(codes)[0, :, 0].tolist() == [1, 13, 2, 14]
    assert pattern.vocab_size == 20


def test_delay_layout_matches_musicgen():
    pattern = DelayPattern(n_codebooks=2, codebook_size=10)
    codes = torch.tensor([[[1, 2, 3], [4, 5, 6]]])
    steps = pattern.encode(codes)[0]
    k = pattern.filler_id
    assert steps[:, 0].tolist() == [1, 2, 3, k]
    assert steps[:, 1].tolist() == [k, 4, 5, 6]
    assert pattern.id_ranges(4)[3, 0].tolist() == [k, k + 1]


def test_flatten_drops_an_incomplete_trailing_frame():
    pattern = FlattenPattern(n_codebooks=4, codebook_size=11)
    codes = random_codes(f=5)
    steps = pattern.encode(codes)[:, :-2]
    assert torch.equal(pattern.decode(steps), codes[..., :4])


def test_bad_codes_shape_is_a_clear_error():
    with pytest.raises(ValueError, match=r"expected codes \[B, 4, F\]"):
        FlattenPattern(4, 11).encode(torch.zeros(1, 3, 5, dtype=torch.long))


@pytest.mark.parametrize("cls", PATTERNS)
def test_step_mask_marks_exactly_the_codes_of_real_frames(cls):
    pattern = cls(n_codebooks=4, codebook_size=11)
    frame_mask = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])
    mask = pattern.step_mask(frame_mask)
    assert mask.shape == (2, pattern.num_steps(6), pattern.n_streams)
    assert mask.sum(dim=(1, 2)).tolist() == [24, 16]
    # the masked-in positions of the short item are those of its own 4-frame encoding
    short = pattern.step_mask(torch.ones(1, 4, dtype=torch.bool))[0]
    assert torch.equal(mask[1, : short.shape[0]][short], torch.ones(16, dtype=torch.bool))
