"""The shared sampler's filters against transformers' logits processors, guidance, and the decoding
loop's stop / guard / guidance behaviour."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM
from transformers.generation.logits_process import (
    ClassifierFreeGuidanceLogitsProcessor,
    MinPLogitsWarper,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
    UnbatchedClassifierFreeGuidanceLogitsProcessor,
)

from audiolm.backbones.llama import LlamaBackbone
from audiolm.generation.decode import decode
from audiolm.generation.sampling import (
    Sampler,
    classifier_free_guidance,
    min_p_filter,
    repetition_penalty,
    restrict_to_range,
)

LOGITS = torch.randn(6, 50, generator=torch.Generator().manual_seed(0)) * 3
HISTORY = torch.randint(0, 50, (6, 12), generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("p", [0.01, 0.05, 0.2, 0.5])
def test_min_p_matches_transformers(p):
    expected = MinPLogitsWarper(min_p=p)(None, LOGITS.clone())
    assert torch.equal(min_p_filter(LOGITS, p), expected)


@pytest.mark.parametrize("penalty", [0.7, 1.3, 2.0])
def test_repetition_penalty_matches_transformers(penalty):
    expected = RepetitionPenaltyLogitsProcessor(penalty=penalty)(HISTORY, LOGITS.clone())
    assert torch.allclose(repetition_penalty(LOGITS, HISTORY, penalty), expected)


def test_repetition_penalty_decay_fades_with_distance():
    logits = torch.full((1, 5), 2.0)
    history = torch.tensor([[1, 2, 3, 1]])  # 1 last seen 1 step ago, 3 two steps ago, 2 three steps ago
    out = repetition_penalty(logits, history, penalty=2.0, decay=1.0)
    assert out[0, 0] == 2.0 and out[0, 4] == 2.0, "unseen ids untouched"
    assert torch.allclose(out[0, 1], torch.tensor(2.0 / 2.0))  # d=1: full penalty
    assert torch.allclose(out[0, 3], torch.tensor(2.0 / 2.0 ** (1 / 2)))
    assert torch.allclose(out[0, 2], torch.tensor(2.0 / 2.0 ** (1 / 3)))
    assert torch.equal(
        repetition_penalty(logits, history, 2.0, decay=0.0),
        RepetitionPenaltyLogitsProcessor(2.0)(history, logits.clone()),
    )
    ignored = repetition_penalty(logits, torch.tensor([[-1, 2]]), 2.0)
    assert ignored[0, 0] == 2.0 and ignored[0, 2] == 1.0, "negative history entries are padding"


@pytest.mark.parametrize("scale", [1.5, 3.0])
def test_cfg_matches_transformers_batched_processor(scale):
    cond, uncond = LOGITS[:3], LOGITS[3:]
    expected = ClassifierFreeGuidanceLogitsProcessor(guidance_scale=scale)(HISTORY[:3], LOGITS.clone())
    assert torch.allclose(classifier_free_guidance(cond, uncond, scale), expected)


def test_cfg_gives_the_unbatched_processor_distribution():
    """transformers' unbatched processor runs the unconditional branch through a model itself and combines
    log-probabilities; on raw logits the guided distribution is the same."""
    torch.manual_seed(0)
    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=50,
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
            pad_token_id=None,
            bos_token_id=None,
            eos_token_id=None,
        )
    ).eval()
    uncond_ids, cond_ids = torch.tensor([[3, 4]]), torch.tensor([[7, 8, 9, 10]])
    with torch.no_grad():
        cond = model(cond_ids).logits[:, -1]
        uncond = model(uncond_ids).logits[:, -1]
        expected = UnbatchedClassifierFreeGuidanceLogitsProcessor(2.5, model, unconditional_ids=uncond_ids)(
            cond_ids, cond.clone()
        )
    ours = classifier_free_guidance(cond, uncond, 2.5)
    assert torch.allclose(ours.softmax(-1), expected.softmax(-1), atol=1e-6)


def test_cfg_rescale_matches_the_conditional_spread():
    cond, uncond = LOGITS[:3], LOGITS[3:]
    guided = classifier_free_guidance(cond, uncond, 4.0)
    full = classifier_free_guidance(cond, uncond, 4.0, rescale=1.0)
    assert torch.allclose(full.std(-1, unbiased=False), cond.std(-1, unbiased=False), atol=1e-4)
    half = classifier_free_guidance(cond, uncond, 4.0, rescale=0.5)
    assert torch.allclose(half, 0.5 * full + 0.5 * guided, atol=1e-5)
    masked = classifier_free_guidance(restrict_to_range(cond, torch.tensor(0), torch.tensor(10)), uncond, 4.0, 0.7)
    assert torch.isinf(masked[:, 10:]).all() and torch.isfinite(masked[:, :10]).all()


def test_full_chain_matches_transformers_order():
    sampler = Sampler(temperature=0.7, top_k=20, top_p=0.9, min_p=0.05, repetition_penalty=1.3)
    x = RepetitionPenaltyLogitsProcessor(1.3)(HISTORY, LOGITS.clone())
    for proc in (TemperatureLogitsWarper(0.7), TopKLogitsWarper(20), TopPLogitsWarper(0.9), MinPLogitsWarper(0.05)):
        x = proc(None, x)
    assert torch.allclose(sampler.filter(LOGITS, HISTORY), x)


def test_greedy_applies_the_repetition_penalty():
    logits = torch.tensor([[3.0, 2.9, 0.0]])
    assert int(Sampler(temperature=0)(logits)) == 0
    assert int(Sampler(temperature=0, repetition_penalty=2.0)(logits, history=torch.tensor([[0]]))) == 1


@pytest.mark.parametrize(
    "kwargs,key",
    [
        ({"min_p": 1.0}, "min_p"),
        ({"repetition_penalty": 0}, "repetition_penalty"),
        ({"cfg_scale": -1}, "cfg_scale"),
        ({"cfg_rescale": 2}, "cfg_rescale"),
        ({"repetition_decay": -1}, "repetition_decay"),
    ],
)
def test_bad_settings_name_their_key(kwargs, key):
    with pytest.raises(ValueError, match=f"sampling.{key}"):
        Sampler(**kwargs)


# -- the decoding loop ---------------------------------------------------------------------------
H, V = 16, 12


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    backbone = LlamaBackbone(hidden_size=H, num_layers=1, num_heads=2, intermediate_size=32).eval()
    table, head = torch.nn.Embedding(V, H), torch.nn.Linear(H, V)
    return backbone, (lambda ids: table(ids[..., 0])), (lambda h: head(h)[:, :, None])


def test_decoding_stops_on_eos_and_reports_lengths(tiny):
    backbone, embed, head = tiny
    prefix = torch.randn(3, 4, H, generator=torch.Generator().manual_seed(2))
    ranges = torch.tensor([0, V]).repeat(20, 1, 1)
    greedy = decode(embed, backbone, head, prefix, ranges, Sampler(temperature=0))
    for stop in {int(t) for t in greedy.steps[:, :, 0].flatten()}:
        out = decode(embed, backbone, head, prefix, ranges, Sampler(temperature=0), stop_id=stop)
        for b in range(3):
            row = greedy.steps[b, :, 0].tolist()
            expected = row.index(stop) if stop in row else 20
            assert int(out.lengths[b]) == expected and bool(out.stopped[b]) == (stop in row)
            assert out.steps[b, :expected, 0].tolist() == row[:expected]
            assert (out.steps[b, expected:, 0] == stop).all(), "a stopped row holds the stop id"


def test_max_duration_guard_bounds_every_row(tiny):
    backbone, embed, head = tiny
    ranges = torch.tensor([0, V - 1]).repeat(7, 1, 1)  # the stop id V-1 is never legal
    out = decode(embed, backbone, head, torch.randn(2, 3, H), ranges, Sampler(), stop_id=V - 1)
    assert out.steps.shape == (2, 7, 1) and not out.stopped.any() and out.lengths.tolist() == [7, 7]


def test_guided_decoding_feeds_both_rows_and_scale_one_is_unguided(tiny):
    backbone, embed, head = tiny
    cond, uncond = torch.randn(2, 4, H), torch.randn(2, 4, H)
    ranges = torch.tensor([0, V]).repeat(10, 1, 1)
    plain = decode(embed, backbone, head, cond, ranges, Sampler(temperature=0))
    scale_one = decode(
        embed, backbone, head, torch.cat([cond, uncond]), ranges, Sampler(temperature=0, cfg_scale=1.0), guided=True
    )
    assert torch.equal(plain.steps, scale_one.steps)
    guided = decode(
        embed,
        backbone,
        head,
        torch.cat([cond, uncond]),
        ranges,
        Sampler(temperature=0, cfg_scale=3.0),
        guided=True,
        use_cache=True,
    )
    recomputed = decode(
        embed,
        backbone,
        head,
        torch.cat([cond, uncond]),
        ranges,
        Sampler(temperature=0, cfg_scale=3.0),
        guided=True,
        use_cache=False,
    )
    assert guided.steps.shape == (2, 10, 1) and torch.equal(guided.steps, recomputed.steps)
    with pytest.raises(ValueError, match="unconditional rows"):
        decode(embed, backbone, head, torch.randn(3, 4, H), ranges, Sampler(cfg_scale=2.0), guided=True)
