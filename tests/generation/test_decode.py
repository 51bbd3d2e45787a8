"""Sampling filters against transformers' logits processors; cached decoding against full recompute."""

from __future__ import annotations

import pytest
import torch
from transformers.generation.logits_process import (
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from audiolm.backbones.llama import LlamaBackbone
from audiolm.backbones.mamba import MambaBackbone
from audiolm.backbones.mamba2 import Mamba2Backbone
from audiolm.backbones.transformer import TransformerBackbone
from audiolm.codecs.melvq import MelVQCodec
from audiolm.codecs.mulaw import MuLawCodec
from audiolm.generation.sampling import Sampler, restrict_to_range, top_k_filter, top_p_filter
from audiolm.patterns import DelayPattern, FlattenPattern
from audiolm.tasks.lm.model import AudioLM
from audiolm.tasks.optim import warmup_schedule

LOGITS = torch.randn(6, 50, generator=torch.Generator().manual_seed(0)) * 3


@pytest.mark.parametrize("k", [1, 5, 49])
def test_top_k_matches_transformers(k):
    expected = TopKLogitsWarper(top_k=k)(None, LOGITS.clone())
    assert torch.equal(top_k_filter(LOGITS, k), expected)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9, 0.99])
def test_top_p_matches_transformers(p):
    expected = TopPLogitsWarper(top_p=p)(None, LOGITS.clone())
    assert torch.equal(top_p_filter(LOGITS, p), expected)


def test_temperature_then_filters_match_transformers_chain():
    expected = TopPLogitsWarper(0.8)(
        None, TopKLogitsWarper(10)(None, TemperatureLogitsWarper(0.7)(None, LOGITS.clone()))
    )
    assert torch.allclose(Sampler(temperature=0.7, top_k=10, top_p=0.8).filter(LOGITS), expected)


def test_sampler_draws_only_kept_ids_and_greedy_is_argmax():
    sampler = Sampler(temperature=1.0, top_k=3)
    kept = top_k_filter(LOGITS, 3) > float("-inf")
    for seed in range(20):
        ids = sampler(LOGITS, generator=torch.Generator().manual_seed(seed))
        assert kept.gather(1, ids[:, None]).all()
    assert torch.equal(Sampler(temperature=0)(LOGITS), LOGITS.argmax(-1))


def test_restrict_to_range_keeps_exactly_the_range():
    lo, hi = torch.tensor([0, 10, 49, 7, 0, 3]), torch.tensor([5, 20, 50, 8, 50, 4])
    out = restrict_to_range(LOGITS, lo, hi)
    ids = torch.arange(50)
    assert torch.equal(out > float("-inf"), (ids >= lo[:, None]) & (ids < hi[:, None]))


def test_bad_sampling_settings_are_clear_errors():
    with pytest.raises(ValueError, match="temperature"):
        Sampler(temperature=-1)
    with pytest.raises(ValueError, match="top_p"):
        Sampler(top_p=0)


BACKBONES = {
    "mamba": lambda: MambaBackbone(hidden_size=32, num_layers=2),
    "mamba2": lambda: Mamba2Backbone(hidden_size=32, num_layers=2, head_dim=16, state_size=16, chunk_size=8),
    "llama": lambda: LlamaBackbone(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64),
    "transformer": lambda: TransformerBackbone(hidden_size=32, num_layers=2, num_heads=2),
}


def tiny_model(backbone, pattern=FlattenPattern, temperature=0.0, codec=None) -> AudioLM:
    torch.manual_seed(0)
    codec = codec or MuLawCodec(bits=4)  # Q=1, K=16: only the numbers matter here
    return AudioLM(backbone, pattern, codec, sampler=Sampler(temperature=temperature)).eval()


@pytest.mark.parametrize("name", BACKBONES)
def test_cached_greedy_generation_equals_full_recompute(name):
    model = tiny_model(BACKBONES[name]())
    prompt = torch.randint(0, 16, (2, 1, 5))
    cached = model.generate_codes(30, prompt=prompt, use_cache=True)
    full = model.generate_codes(30, prompt=prompt, use_cache=False)
    assert torch.equal(cached, full)
    assert torch.equal(cached[..., :5], prompt), "a continuation starts with its prompt"


@pytest.mark.parametrize("pattern", [FlattenPattern, DelayPattern])
def test_generated_codes_are_valid_for_every_pattern(pattern):
    codec = MelVQCodec(n_codebooks=3, codebook_size=16)  # Q=3 so delay has filler positions
    model = tiny_model(BACKBONES["mamba"](), pattern, temperature=1.0, codec=codec)
    codes = model.generate_codes(12, batch_size=3, generator=torch.Generator().manual_seed(0))
    assert codes.shape == (3, 3, 12) and codes.min() >= 0 and codes.max() < 16


def test_prompt_longer_than_the_request_is_an_error():
    model = tiny_model(BACKBONES["mamba"]())
    with pytest.raises(ValueError, match="prompt has 8 frames"):
        model.generate_codes(4, prompt=torch.zeros(1, 1, 8, dtype=torch.long))


def test_warmup_then_cosine_schedule():
    f = warmup_schedule(warmup_steps=10, total_steps=110, decay="cosine", min_lr_ratio=0.1)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(60) == pytest.approx(0.55) and f(110) == pytest.approx(0.1) and f(500) == pytest.approx(0.1)
    assert warmup_schedule(5, 100, decay="constant")(50) == 1.0
    with pytest.raises(ValueError, match="decay"):
        warmup_schedule(1, 2, decay="exp")


@pytest.mark.parametrize("pattern", [FlattenPattern, DelayPattern])
def test_a_continuation_keeps_every_prompt_code(pattern):
    codec = MelVQCodec(n_codebooks=3, codebook_size=16)  # with delay, the prompt's last frames span later steps
    model = tiny_model(BACKBONES["llama"](), pattern, temperature=1.0, codec=codec)
    prompt = torch.randint(0, 16, (2, 3, 6))
    codes = model.generate_codes(12, prompt=prompt, generator=torch.Generator().manual_seed(0))
    assert torch.equal(codes[..., :6], prompt)
