"""The lean decoding paths: exact sampling, legal-id masks, LoRA, grouped-query attention and bf16
through the cache, and the clear error when sampling meets non-finite logits."""

import pytest
import torch
from test_backbones import BACKBONES, H  # the same tiny backbones

from audiolm.adapters.lora import LoraSettings, add_lora
from audiolm.backbones.llama import LlamaBackbone
from audiolm.errors import AudiolmError
from audiolm.generation.decode import decode
from audiolm.generation.sampling import NEG_INF, Sampler, draw, illegal_id_masks, restrict_to_range


def cached_matches_full(backbone, prefix=5, length=14, dtype=torch.float32, atol=1e-5):
    x = torch.randn(2, length, H, generator=torch.Generator().manual_seed(1)).to(dtype)
    with torch.no_grad():
        full, _ = backbone(x)
        cache = backbone.new_cache(2, length)
        steps = [backbone(x[:, :prefix], cache)[0]]
        steps += [backbone(x[:, t : t + 1], cache)[0] for t in range(prefix, length)]
    torch.testing.assert_close(torch.cat(steps, 1), full, rtol=0, atol=atol)


@pytest.mark.parametrize("shape", [(1, 1024), (3, 2, 17)])
def test_draw_is_torch_multinomial_with_the_same_generator(shape):
    logits = torch.randn(shape, generator=torch.Generator().manual_seed(2)) * 3
    logits[..., ::3] = NEG_INF  # excluded ids, as a legal range or top-k leaves them
    probs = logits.softmax(-1)
    mine, theirs = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    for _ in range(50):
        ids, margins = draw(probs, mine)
        expected = torch.multinomial(probs.reshape(-1, shape[-1]), 1, generator=theirs).reshape(shape[:-1])
        assert torch.equal(ids, expected)
        assert bool((margins > 0).all() and margins.isfinite().all())


def test_illegal_id_masks_equal_restrict_to_range():
    ranges = torch.tensor([[[0, 4], [4, 9]], [[2, 3], [0, 9]], [[0, 4], [4, 9]]])  # [S=3, M=2, 2]
    logits = torch.randn(3, 2, 9)
    masks = illegal_id_masks(ranges, 9)
    assert masks[0] is masks[2], "steps with equal ranges share one mask"
    for step, mask in enumerate(masks):
        expected = restrict_to_range(logits[step], ranges[step, :, 0], ranges[step, :, 1])
        assert torch.equal(logits[step].masked_fill(mask, NEG_INF), expected)


@pytest.mark.parametrize("name", BACKBONES)
def test_lora_adapters_reach_the_lean_decoding_path(name):
    torch.manual_seed(0)
    backbone = BACKBONES[name]()
    add_lora(backbone, LoraSettings(rank=4), backbone.lora_targets)
    with torch.no_grad():  # adapters away from their zero init, as after finetuning
        for n, p in backbone.named_parameters():
            if "lora_B" in n:
                p.normal_(std=0.5)
    cached_matches_full(backbone.eval())


def test_grouped_query_attention_decodes_through_the_cache():
    torch.manual_seed(0)
    cached_matches_full(
        LlamaBackbone(
            hidden_size=H, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=64, max_position_embeddings=64
        ).eval()
    )


@pytest.mark.parametrize("name", ["llama", "transformer"])
def test_attention_backbones_decode_in_bf16(name):
    torch.manual_seed(0)  # folded weights round differently in bf16: a couple of ulps (0.0078 at 2-4)
    cached_matches_full(BACKBONES[name]().eval().to(torch.bfloat16), dtype=torch.bfloat16, atol=0.02)


def test_non_finite_logits_stop_sampling_with_a_clear_error():
    torch.manual_seed(0)
    backbone = BACKBONES["llama"]().eval()
    head = torch.nn.Linear(H, 8)
    with torch.no_grad():
        head.weight[3, 0] = float("nan")
    ranges = torch.tensor([[0, 8]]).expand(6, 1, 2)
    with pytest.raises(AudiolmError, match="check_weights"):
        decode(
            lambda ids: torch.randn(*ids.shape[:2], H),
            backbone,
            lambda h: head(h)[:, :, None],
            torch.randn(1, 2, H),
            ranges,
            Sampler(),
        )
    with pytest.raises(AudiolmError, match="NaN or Inf"):
        Sampler()(torch.full((2, 8), float("nan")))
