"""VALL-E on tiny random models: sequences, losses, cached AR decoding, guidance, NAR passes,
bidirectional attention, LoRA adapters and safetensors exports."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from audiolm.backbones.llama import LlamaBackbone
from audiolm.backbones.mamba import MambaBackbone
from audiolm.backbones.mamba2 import Mamba2Backbone
from audiolm.backbones.transformer import TransformerBackbone
from audiolm.codecs.melvq import MelVQCodec
from audiolm.exports import read_export, save_export
from audiolm.generation.sampling import Sampler
from audiolm.tasks.tts.valle.layout import PROMPT_NULL, TEXT_NULL, TokenLayout
from audiolm.tasks.tts.valle.model import VallE
from audiolm.tasks.tts.valle.task import VallETask
from audiolm.text.frontend import TextFrontend

from support.tts_items import batch, item

H, Q, K = 32, 3, 16
BACKBONES = {
    "llama": lambda: LlamaBackbone(hidden_size=H, num_layers=2, num_heads=2, intermediate_size=64),
    "transformer": lambda: TransformerBackbone(hidden_size=H, num_layers=2, num_heads=2, max_position_embeddings=512),
    "mamba": lambda: MambaBackbone(hidden_size=H, num_layers=2),
    "mamba2": lambda: Mamba2Backbone(hidden_size=H, num_layers=2, head_dim=16, state_size=16, chunk_size=8),
}
FRONTEND = TextFrontend("en-us")


OPTIM = {"optimizer": torch.optim.AdamW, "scheduler": {"warmup_steps": 1, "total_steps": 2}}


def make_model(name: str = "llama", **kwargs) -> VallE:
    torch.manual_seed(0)
    codec = MelVQCodec(n_codebooks=Q, codebook_size=K)
    codec.load_fitted_state({"centroids": torch.randn(Q, K, codec.n_mels)})
    kwargs.setdefault("sampler", Sampler(temperature=0))
    return VallE(BACKBONES[name](), codec, FRONTEND, prompt_seconds=0.1, **kwargs).eval()


def make_task(name: str = "llama", lora: dict | None = None, **kwargs) -> VallETask:
    return VallETask(make_model(name, **kwargs), OPTIM, lora=lora).eval()


# -- sequences -------------------------------------------------------------------------------
def test_dropped_conditions_keep_the_sequence_length():
    layout = TokenLayout(10, Q, K)
    ph, prompt = torch.tensor([1, 2, 3]), torch.randint(0, K, (Q, 4))
    full = layout.prefix(0, ph, prompt)
    dropped = layout.prefix(0, ph, prompt, drop_text=True, drop_prompt=True)
    assert full.shape == dropped.shape == (1 + 3 + 1 + 4 + 1, Q)
    assert (dropped[1:4, 0] == TEXT_NULL).all() and (dropped[5:9, 0] == PROMPT_NULL).all()
    assert (dropped[5:9, 1:] == 0).all() and (full[5:9] >= layout.prompt0).all()
    codes = torch.randint(0, K, (Q, 6))
    seq, start = layout.nar_sequence(full, codes, 2, echo=False)
    assert start == full.shape[0] and (seq[start:, 2] == 0).all() and (seq[start:, :2] >= layout.nar0).all()
    echoed, start = layout.nar_sequence(full, codes, 2, echo=True)
    assert echoed.shape[0] == full.shape[0] + 2 * 6 + 1 and torch.equal(echoed[start:], seq[full.shape[0] :])
    assert int(seq.max()) < layout.size


# -- losses ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["llama", "mamba"])  # bidirectional NAR, and echo NAR on a causal backbone
def test_padding_does_not_change_any_level_loss(name):
    task = make_task(name)
    short, long = item(4, 3, 5, 0), item(9, 6, 11, 1)
    keep = torch.zeros(2, dtype=torch.bool)
    for level in range(Q):
        together = task.level_losses(batch(short, long), torch.full((2,), level), keep, keep)
        alone = [task.level_losses(batch(x), torch.full((1,), level), keep[:1], keep[:1]) for x in (short, long)]
        assert int(together[f"count_q{level}"]) == (6 + 12 if level == 0 else 5 + 11)  # AR adds EOS
        torch.testing.assert_close(
            together[f"nll_sum_q{level}"],
            alone[0][f"nll_sum_q{level}"] + alone[1][f"nll_sum_q{level}"],
            atol=1e-4,
            rtol=1e-5,
        )


def test_a_training_step_reaches_every_trained_parameter():
    task = make_task("llama").train()
    task.level_p = torch.full((Q,), 1 / Q)
    torch.manual_seed(3)
    loss = task.training_step(batch(*[item(5, 3, 6, s) for s in range(12)]), 0)
    assert abs(loss.item() - np.log(K)) < 1.0  # near uniform when untrained
    loss.backward()
    unused = [n for n, p in task.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())]
    assert unused == []


def test_validation_scores_every_level_separately(caplog):
    task = make_task("llama")
    logged = {}
    task.log = lambda key, value, **kw: logged.__setitem__(key, float(value.detach()))
    task.validation_step(batch(item(4, 3, 5, 0), item(6, 3, 7, 1)), 0)
    assert {"val/nll", "val/ar/nll", "val/ar/acc", "val/nar/nll", "val/nar/acc"} <= set(logged)
    assert {f"val/nll_q{q}" for q in range(Q)} | {f"val/acc_q{q}" for q in range(Q)} <= set(logged)


# -- inference -------------------------------------------------------------------------------
def never_stop(model: VallE) -> VallE:
    with torch.no_grad():
        model.ar_head.weight[model.layout.eos].fill_(0)
        model.ar_head.weight[: model.layout.k] *= 50  # some code always beats EOS's logit of 0
    return model


@pytest.mark.parametrize("name", BACKBONES)
def test_cached_ar_decoding_equals_full_recompute_under_greedy(name):
    model = never_stop(make_model(name))
    ph, prompt = FRONTEND.ids("A short test."), torch.randint(0, K, (Q, 5))
    cached = model.generate_codes(ph, prompt, max_frames=16, use_cache=True)[0]
    full = model.generate_codes(ph, prompt, max_frames=16, use_cache=False)[0]
    assert cached.shape == (Q, 16) and torch.equal(cached, full)


def test_generation_stops_on_eos_after_at_least_one_frame():
    model = make_model("llama")
    model.ar_head = torch.nn.Linear(H, K + 1)  # a head that always prefers EOS
    with torch.no_grad():
        model.ar_head.weight.zero_()
        model.ar_head.bias.zero_()
        model.ar_head.bias[model.layout.eos] = 10.0
    codes = model.generate_codes(FRONTEND.ids("Hi."), None, max_frames=50)[0]
    assert codes.shape == (Q, 1), "EOS cannot come first; it ends the rendition right after"


def test_long_text_is_spoken_sentence_by_sentence_and_joined():
    from audiolm.tasks.inference import SpeechRequest
    from audiolm.tasks.tts.speech import GAP_SECONDS

    model = never_stop(make_model("llama"))
    hop = model.codec.sample_rate / model.codec.frame_rate
    text = "One short sentence. And a second one! A third?"
    for rolling in (False, True):
        result = model.generate(
            SpeechRequest(
                text, torch.randint(0, K, (Q, 5)), max_seconds=4 / model.codec.frame_rate, rolling_context=rolling
            )
        )
        wav = result.audio[0].wav
        assert wav.shape == (1, 3 * 4 * hop + 2 * int(GAP_SECONDS * model.codec.sample_rate))
        assert result.codes[0].shape == (Q, 3 * 4)


def test_guidance_combines_conditional_and_unconditional_rows():
    model = never_stop(make_model("llama"))
    model.sampler = Sampler(temperature=0, cfg_scale=3.0)
    ph, prompt = torch.tensor(FRONTEND.ids("Guided speech.")), torch.randint(0, K, (Q, 5))
    codes = model.generate_codes(ph.tolist(), prompt, max_frames=6)[0]
    cond = model.layout.prefix(0, ph, prompt)
    uncond = model.layout.prefix(0, ph, prompt, drop_text=True, drop_prompt=True)
    with torch.no_grad():
        hidden, _ = model.backbone(model.embed(torch.stack([cond, uncond])))
        logits = model.ar_head(hidden[:, -1])
    first = (logits[1] + 3.0 * (logits[0] - logits[1]))[:K].argmax()
    assert int(codes[0, 0]) == int(first)


@pytest.mark.parametrize("name", ["llama", "transformer"])
def test_attention_backbones_attend_both_ways(name):
    torch.manual_seed(0)
    one_layer = {
        "llama": lambda: LlamaBackbone(hidden_size=H, num_layers=1, num_heads=2, intermediate_size=64),
        "transformer": lambda: TransformerBackbone(hidden_size=H, num_layers=1, num_heads=2),
    }[name]().eval()
    x = torch.randn(2, 7, H)
    mask = torch.tensor([[True] * 7, [True] * 5 + [False] * 2])
    with torch.no_grad():
        both = one_layer.forward_bidirectional(x, mask)
        causal, _ = one_layer(x)
        alone = one_layer.forward_bidirectional(x[1:, :5])
        changed = x.clone()
        changed[0, -1] = torch.randn(H)  # not a constant shift, which LayerNorm would remove
        later = one_layer.forward_bidirectional(changed, mask)
    # With one layer the last position sees the same keys either way; earlier ones see the future only here.
    torch.testing.assert_close(both[0, -1], causal[0, -1], atol=1e-5, rtol=0)
    torch.testing.assert_close(both[1, :5], alone[0], atol=1e-5, rtol=0)  # padding is not attended to
    assert not torch.allclose(later[0, 0], both[0, 0]), "the first position sees the last"


def test_recurrent_backbones_echo_the_target_instead_of_attending_both_ways():
    assert not hasattr(BACKBONES["mamba"](), "forward_bidirectional")
    assert make_model("mamba").echo and not make_model("llama").echo


# -- LoRA and exports ------------------------------------------------------------------------
def test_lora_adapter_trains_alone_exports_and_reloads(tmp_path):
    from omegaconf import OmegaConf

    from audiolm.exports import load_adapter

    task = make_task("llama", lora={"rank": 4, "alpha": 8})
    trainable = {n for n, p in task.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    tuned = task.model
    with torch.no_grad():  # stand-in for finetuning: adapters away from their zero init
        for n, p in tuned.named_parameters():
            if "lora_B" in n:
                p.normal_(std=0.5)
    never_stop(tuned)
    out = save_export(tuned, OmegaConf.create({"note": "unit"}), tmp_path / "voice.safetensors", adapter=True)
    meta, tensors = read_export(out)
    assert meta["kind"] == "lora_adapter" and all("lora_" in k for k in tensors)
    base = never_stop(make_model("llama"))
    ph = FRONTEND.ids("Adapted voice.")
    before = base.generate_codes(ph, None, max_frames=10)[0]
    load_adapter(base, out)
    cached = base.generate_codes(ph, None, max_frames=10, use_cache=True)[0]
    assert torch.equal(cached, tuned.generate_codes(ph, None, max_frames=10)[0])
    assert torch.equal(cached, base.generate_codes(ph, None, max_frames=10, use_cache=False)[0]), (
        "adapters in the cached path"
    )
    assert not torch.equal(cached, before)


@pytest.mark.parametrize(
    ("dtype", "torch_dtype"), [("fp32", torch.float32), ("fp16", torch.float16), ("bf16", torch.bfloat16)]
)
def test_safetensors_export_holds_weights_codec_state_and_metadata(tmp_path, dtype, torch_dtype):
    from omegaconf import OmegaConf

    model = make_model("llama")
    out = save_export(model, OmegaConf.create({"task": {"x": 1}}), tmp_path / "m.safetensors", dtype=dtype)
    meta, tensors = read_export(out)
    assert meta["dtype"] == dtype and meta["kind"] == "model"
    assert FRONTEND.vocab.to_json() == meta["extra.phoneme_vocab"]
    assert tensors["ar_head.weight"].dtype == torch_dtype
    assert tensors["extra.codec_state.centroids"].dtype == torch.float32
    state = model.state_dict()
    for k, v in state.items():
        torch.testing.assert_close(tensors[k].float(), v.float(), rtol=0, atol=0 if dtype == "fp32" else 1e-2)


def test_a_sentence_with_an_equals_sign_is_text_not_an_override():
    from audiolm.cli.export import split_args

    ckpt, overrides, rest = split_args(
        ["E=mc2 is famous.", "ckpt=m.ckpt", "sampling.top_k=5", "+task.x=1", "--out", "o.wav"]
    )
    assert str(ckpt) == "m.ckpt" and overrides == ["sampling.top_k=5", "+task.x=1"]
    assert rest == ["E=mc2 is famous.", "--out", "o.wav"]


def test_nar_guidance_follows_the_run_sampler():
    model = make_model("llama", sampler=Sampler(temperature=0.9, cfg_scale=2.5, cfg_rescale=0.5))
    nar = model.nar_sampler
    assert (nar.temperature, nar.cfg_scale, nar.cfg_rescale) == (0.0, 2.5, 0.5)


def test_lora_finetuning_loads_its_base_before_fitting_and_refuses_none(tmp_path):
    from omegaconf import OmegaConf

    from audiolm.errors import ConfigError
    from audiolm.runs import _load_finetune_base

    base = make_task("llama")
    with torch.no_grad():
        base.model.ar_head.weight.add_(1.0)
    path = tmp_path / "base.ckpt"
    torch.save({"state_dict": base.state_dict(), "codec_state": base.model.codec.fitted_state()}, path)
    tuned = make_task("llama", lora={"rank": 4})
    assert not torch.equal(tuned.model.ar_head.weight, base.model.ar_head.weight)
    _load_finetune_base(OmegaConf.create({"task": {"lora": {"rank": 4, "base": str(path)}}}), tuned)
    assert torch.equal(tuned.model.ar_head.weight, base.model.ar_head.weight)
    assert not tuned.model.ar_head.weight.requires_grad
    with pytest.raises(ConfigError, match="task.lora.base="):
        _load_finetune_base(OmegaConf.create({"task": {"lora": {"rank": 4, "base": None}}}), tuned)


def test_mamba_lora_defaults_to_the_projection_every_path_calls(caplog):
    from audiolm.adapters.lora import LoraSettings, add_lora

    task = make_task("mamba", lora={"rank": 2})
    adapted = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n, p in task.named_parameters() if "lora_" in n}
    assert adapted == {"in_proj"}
    with caplog.at_level(logging.WARNING):
        add_lora(BACKBONES["mamba"](), LoraSettings(rank=2, target_modules=["out_proj"]))
    assert "fused CUDA kernels" in caplog.text
