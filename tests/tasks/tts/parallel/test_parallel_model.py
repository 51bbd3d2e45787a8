"""Parallel all-codebook TTS on tiny random models: audio encoders and decoder heads, the segmented
attention mask, training masks, the demasking loop, the duration head, AR cached decoding, and
the experiment recipes."""

from __future__ import annotations

import functools
import logging
import math

import pytest
import torch

from audiolm.backbones.llama import LlamaBackbone
from audiolm.backbones.mamba import MambaBackbone
from audiolm.backbones.transformer import TransformerBackbone
from audiolm.codecs.melvq import MelVQCodec
from audiolm.errors import ConfigError
from audiolm.generation.sampling import Sampler
from audiolm.tasks.tts.parallel.decoder import AudioDecoder
from audiolm.tasks.tts.parallel.encoders import AudioEncoder, SummedAudioEncoder
from audiolm.tasks.tts.parallel.masking import demask_schedule, training_mask
from audiolm.tasks.tts.parallel.model import ParallelTTS
from audiolm.tasks.tts.parallel.modes.ar import AutoregressiveMode
from audiolm.tasks.tts.parallel.modes.nar import MaskedMode
from audiolm.tasks.tts.parallel.sequence import PROMPT, RESPONSE, TEXT
from audiolm.tasks.tts.parallel.task import ParallelTTSTask
from audiolm.text.frontend import TextFrontend

from support.tts_items import batch, item  # the same random items (Q, K as here)

H, Q, K = 32, 3, 16
BACKBONES = {
    "llama": lambda: LlamaBackbone(hidden_size=H, num_layers=2, num_heads=2, intermediate_size=64),
    "transformer": lambda: TransformerBackbone(hidden_size=H, num_layers=2, num_heads=2, max_position_embeddings=512),
    "mamba": lambda: MambaBackbone(hidden_size=H, num_layers=2),
}
SHORT = {"short": lambda: TransformerBackbone(hidden_size=H, num_layers=1, num_heads=2, max_position_embeddings=40)}
FRONTEND = TextFrontend("en-us")


def make_model(
    mode=MaskedMode,
    backbone: str = "llama",
    encoder=AudioEncoder,
    shared_heads: bool = False,
    sampler: Sampler | None = None,
) -> ParallelTTS:
    torch.manual_seed(0)
    codec = MelVQCodec(n_codebooks=Q, codebook_size=K)
    codec.load_fitted_state({"centroids": torch.randn(Q, K, codec.n_mels)})
    return ParallelTTS(
        {**BACKBONES, **SHORT}[backbone](),
        codec,
        FRONTEND,
        mode,
        encoder,
        functools.partial(AudioDecoder, shared_heads=shared_heads),
        sampler=sampler or Sampler(temperature=0),
        prompt_seconds=0.1,
    ).eval()


def make_task(mode=MaskedMode, backbone: str = "llama") -> ParallelTTSTask:
    optim = {"optimizer": torch.optim.AdamW, "scheduler": {"warmup_steps": 1, "total_steps": 2}}
    return ParallelTTSTask(make_model(mode, backbone), optim).eval()


# -- encoders and decoder --------------------------------------------------------------------
@pytest.mark.parametrize("encoder", [AudioEncoder, SummedAudioEncoder])
def test_audio_encoders_give_one_vector_per_frame_from_every_level(encoder):
    torch.manual_seed(0)
    enc = encoder(n_levels=Q, n_ids=K + 1, hidden_size=H)
    ids = torch.randint(0, K, (2, 5, Q))
    out = enc(ids)
    assert out.shape == (2, 5, H)
    for q in range(Q):
        changed = ids.clone()
        changed[0, 2, q] = (changed[0, 2, q] + 1) % K
        diff = (enc(changed) - out).abs().sum(-1)
        assert diff[0, 2] > 0 and diff.sum() == diff[0, 2], "a code moves its own frame only"


def test_audio_encoder_weighs_levels_with_learned_weights():
    torch.manual_seed(0)
    enc = AudioEncoder(n_levels=Q, n_ids=K, hidden_size=H)
    torch.testing.assert_close(enc.level_weights, torch.full((Q,), 1 / Q))
    ids = torch.randint(0, K, (1, 4, Q))
    with torch.no_grad():
        enc.level_logits.copy_(torch.tensor([0.0, -1e4, -1e4]))  # all weight on level 0
        only0 = enc(ids)
        ids[..., 1:] = (ids[..., 1:] + 1) % K
        torch.testing.assert_close(enc(ids), only0)


@pytest.mark.parametrize("shared", [True, False])
def test_output_heads_are_shared_across_levels_or_one_per_level(shared):
    model = make_model(shared_heads=shared)
    heads = model.decoder.heads
    assert heads.shape == ((1 if shared else Q), K, H)
    hidden = torch.randn(2, 4, H)
    with torch.no_grad():
        before = model.decoder(hidden)
        heads[-1].add_(torch.randn_like(heads[-1]))  # the head of the last level (or the shared one)
        after = model.decoder(hidden)
    changed = [not torch.equal(before[..., q, :], after[..., q, :]) for q in range(Q)]
    assert changed == ([True] * Q if shared else [False] * (Q - 1) + [True])


def test_decoder_head_sharing_is_a_config_switch():
    from test_configs import compose_train

    from audiolm.runs import build

    for shared, n_heads in (("true", 1), ("false", 4)):
        cfg = compose_train(
            [
                "experiment=tts_parallel_tiny",
                f"task.model.audio_decoder.shared_heads={shared}",
                "task/tts/parallel/encoder@task.model.audio_encoder=summed",
            ]
        )
        _, _, task = build(cfg)
        model = task.model
        assert model.decoder.heads.shape[0] == n_heads and isinstance(model.prompt_encoder, SummedAudioEncoder)


# -- the sequence and its attention mask -----------------------------------------------------
def test_segmented_mask_keeps_text_and_prompt_blind_to_later_segments():
    model = make_model()
    b = batch(item(4, 3, 5, 0), item(6, 4, 7, 1))
    keep = torch.zeros(2, dtype=torch.bool)

    def hidden(codes, prompt):
        packed = model.pack_ids(
            b["phonemes"], b["phonemes_lengths"], prompt, b["prompt_lengths"], codes, b["codes_lengths"], keep, keep
        )
        with torch.no_grad():
            return model.backbone.forward_masked(packed.embeds, packed.segmented_mask()), packed.segments

    codes, prompt = b["codes"].transpose(1, 2), b["prompt"]
    base, segments = hidden(codes, prompt)
    other_codes = codes.clone()
    other_codes[1, -1] = (other_codes[1, -1] + 1) % K  # the last frame of the longer item
    new_response, _ = hidden(other_codes, prompt)
    other_prompt = prompt.clone()
    other_prompt[1, :, -1] = (other_prompt[1, :, -1] + 1) % K
    new_prompt, _ = hidden(codes, other_prompt)
    seg = segments[1]
    moved = lambda h: (h[1] - base[1]).abs().amax(-1) > 1e-6  # noqa: E731
    assert not moved(new_response)[seg != RESPONSE].any(), "text, prompt and BOS never see the response"
    assert moved(new_response)[seg == RESPONSE].all(), "every response frame sees every other (both ways)"
    assert not moved(new_prompt)[seg == TEXT].any() and moved(new_prompt)[seg == PROMPT].all()
    torch.testing.assert_close(new_response[0], base[0])  # items do not see each other
    one = batch(item(4, 3, 5, 0))
    packed = model.pack_ids(
        one["phonemes"],
        one["phonemes_lengths"],
        one["prompt"],
        one["prompt_lengths"],
        one["codes"].transpose(1, 2),
        one["codes_lengths"],
        keep[:1],
        keep[:1],
    )
    with torch.no_grad():
        alone = model.backbone.forward_masked(packed.embeds, packed.segmented_mask())
    torch.testing.assert_close(alone[0], base[0, : alone.shape[1]], atol=1e-5, rtol=0)  # padding is not seen


def test_padding_does_not_change_the_ar_losses():
    task = make_task(AutoregressiveMode)
    short, long = item(4, 3, 5, 0), item(9, 6, 11, 1)
    keep = torch.zeros(2, dtype=torch.bool)
    together = task.losses_for(batch(short, long), keep, keep)
    alone = [task.losses_for(batch(x), keep[:1], keep[:1]) for x in (short, long)]
    for q in range(Q):
        torch.testing.assert_close(together[f"nll_sum_q{q}"], alone[0][f"nll_sum_q{q}"] + alone[1][f"nll_sum_q{q}"])
    assert int(together["count_q0"]) == 6 + 12 and int(together["count_q1"]) == 5 + 11  # EOS in level 0 only


# -- training --------------------------------------------------------------------------------
@pytest.mark.parametrize("per_level", [False, True])
def test_training_masks_the_asked_share_of_each_item(per_level):
    lengths = torch.tensor([10, 4, 1])
    masked = training_mask(lengths, Q, torch.tensor([0.8, 0.5, 0.3]), per_level, torch.Generator().manual_seed(0))
    assert masked.shape == (3, 10, Q)
    units = masked.sum((1, 2)) if per_level else masked.all(-1).sum(1)
    assert units.tolist() == ([24, 6, 1] if per_level else [8, 2, 1])  # at least one unit per item
    assert not masked[1, 4:].any() and not masked[2, 1:].any(), "padding is never masked"
    if not per_level:
        assert (masked.all(-1) == masked.any(-1)).all(), "a timestep is masked whole"


@pytest.mark.parametrize("mode", [MaskedMode, AutoregressiveMode])
def test_a_training_step_reaches_every_trained_parameter(mode):
    task = make_task(mode).train()
    drop = torch.tensor([True, False, False, True])
    out = task.losses_for(batch(*[item(5, 3, 6 + s, s) for s in range(4)]), drop, drop.flip(0))
    out["loss"].backward()
    unused = [n for n, p in task.named_parameters() if p.grad is None or not p.grad.any()]
    assert unused == []
    assert abs(float(out["nll_sum_q0"] / out["count_q0"]) - math.log(K)) < 1.0  # near uniform when untrained


def test_nar_mode_needs_an_attention_backbone():
    with pytest.raises(ConfigError, match="only runs causally.*model=llama"):
        make_model(MaskedMode, "mamba")


# -- NAR inference ---------------------------------------------------------------------------
@pytest.mark.parametrize("unit", ["timestep", "level"])
def test_demasking_accepts_the_scheduled_units_and_never_remasks_them(unit):
    model = make_model(
        functools.partial(MaskedMode, steps=6, mask_unit=unit),
        sampler=Sampler(temperature=1.0, cfg_scale=2.0, cfg_rescale=0.5),
    )
    frames, n = 9, 2
    condition = model.condition(torch.tensor(FRONTEND.ids("A test.")), torch.randint(0, K, (Q, 4)), n)
    trace = []
    with torch.inference_mode():
        codes = model.mode.demask(model, condition, frames, n, torch.Generator().manual_seed(0), trace)
    units = frames * (Q if unit == "level" else 1)
    schedule = demask_schedule(units, 6)
    assert len(trace) == 6 and schedule[-1] == 0 and sorted(schedule, reverse=True) == schedule
    masked_before, codes_before = torch.ones(n, units, dtype=torch.bool), torch.full((n, frames, Q), model.mask_id)
    for (masked, step_codes), still in zip(trace, schedule, strict=True):
        assert (masked.sum(1) == still).all(), "exactly the scheduled number stays masked"
        assert not (masked & ~masked_before).any(), "an accepted unit is never masked again"
        accepted_before = ~masked_before.view(n, frames, -1).expand(-1, -1, Q)
        assert torch.equal(step_codes[accepted_before], codes_before[accepted_before]), "accepted codes stay"
        now_masked = masked.view(n, frames, -1).expand(-1, -1, Q)
        assert (step_codes[now_masked] == model.mask_id).all() and (step_codes[~now_masked] < K).all()
        masked_before, codes_before = masked, step_codes
    assert torch.equal(codes, codes_before) and (codes < K).all()


def test_demask_schedule_is_cosine():
    assert demask_schedule(100, 4) == [92, 70, 38, 0]
    assert demask_schedule(5, 1) == [0]


def set_duration(model: ParallelTTS, frames: float) -> ParallelTTS:
    with torch.no_grad():
        model.mode.duration.weight.zero_()
        model.mode.duration.bias.fill_(math.log(frames))
    return model


def test_duration_head_output_is_the_frame_count(caplog):
    model = set_duration(make_model(functools.partial(MaskedMode, steps=4)), 37.2)
    ph, prompt = FRONTEND.ids("How long is this?"), torch.randint(0, K, (Q, 4))
    assert [c.shape for c in model.generate_codes(ph, prompt, max_frames=100, n_samples=2)] == [(Q, 37), (Q, 37)]
    with caplog.at_level(logging.WARNING):
        assert model.generate_codes(ph, None, max_frames=20)[0].shape == (Q, 20)
    assert "cuts it to 20" in caplog.text
    assert set_duration(model, 0.2).generate_codes(ph, prompt, max_frames=100)[0].shape == (Q, 1)


def test_duration_loss_regresses_log_frames():
    task = make_task()
    set_duration(task.model, 7.0)
    keep = torch.zeros(2, dtype=torch.bool)
    out = task.losses_for(batch(item(4, 3, 7, 0), item(5, 3, 14, 1)), keep, keep)
    torch.testing.assert_close(out["duration_loss"], torch.tensor(math.log(2) ** 2 / 2))
    dropped = task.losses_for(batch(item(4, 3, 7, 0), item(5, 3, 14, 1)), torch.tensor([False, True]), keep)
    torch.testing.assert_close(dropped["duration_loss"], torch.tensor(0.0))  # no duration without text


# -- AR inference ----------------------------------------------------------------------------
def never_stop(model: ParallelTTS) -> ParallelTTS:
    with torch.no_grad():
        model.decoder.heads[:, model.eos_id] = 0
        model.decoder.heads[:, : model.eos_id] *= 50  # some code always beats EOS's logit of 0
    return model


@pytest.mark.parametrize("name", BACKBONES)
def test_ar_cached_decoding_equals_full_forward(name):
    model = never_stop(make_model(AutoregressiveMode, name))
    ph, prompt = FRONTEND.ids("A short test."), torch.randint(0, K, (Q, 5))
    cached = model.generate_codes(ph, prompt, max_frames=12, use_cache=True)[0]
    full = model.generate_codes(ph, prompt, max_frames=12, use_cache=False)[0]
    assert cached.shape == (Q, 12) and torch.equal(cached, full)
    # Teacher-forced training logits on the decoded frames pick the same codes: one layout for both.
    b = batch({"phonemes": torch.tensor(ph), "prompt": prompt, "codes": cached})
    keep = torch.zeros(1, dtype=torch.bool)
    packed = model.pack_batch(b, cached.T[None], keep, keep)
    with torch.no_grad():
        logits = model.decoder(packed.response_hidden(model.backbone(packed.embeds)[0], before=1)[0])
    assert torch.equal(logits[0, :12, :, :K].argmax(-1), cached.T)


def test_ar_generation_ends_at_eos_after_at_least_one_frame():
    class PrefersEOS(torch.nn.Module):  # logits [..., Q, K + 1] where level 0 always favours EOS
        def forward(self, hidden):
            logits = hidden.new_zeros(*hidden.shape[:-1], Q, K + 1)
            logits[..., 0, K] = 10.0
            return logits

    model = make_model(AutoregressiveMode)
    model.decoder = PrefersEOS()
    assert model.generate_codes(FRONTEND.ids("Hi."), None, max_frames=50)[0].shape == (Q, 1), "EOS ends it, never first"


@pytest.mark.parametrize("mode", [MaskedMode, AutoregressiveMode])
def test_max_duration_guard_follows_the_backbone_positions(mode, caplog):
    model = make_model(mode, "short")  # 40 learned positions
    set_duration(model, 100) if mode is MaskedMode else never_stop(model)
    ph, prompt = FRONTEND.ids("Hi."), torch.randint(0, K, (Q, 5))
    with caplog.at_level(logging.WARNING):
        codes = model.generate_codes(ph, prompt, max_frames=100)[0]
    assert codes.shape[1] == 40 - (len(ph) + 5 + 2) and "max duration lowered" in caplog.text
    with pytest.raises(ConfigError, match="shorten the text"):
        model.generate_codes(
            FRONTEND.ids("A much longer sentence than forty positions can hold."), prompt, max_frames=10
        )


# -- recipes ---------------------------------------------------------------------------------
def test_tts_parallel_recipe_is_the_seeds_smaller_model():
    from test_configs import compose_train

    cfg = compose_train(["experiment=tts_parallel"])
    assert cfg.model._target_.endswith("LlamaBackbone") and cfg.codec._target_.endswith("NemoCodec")
    assert (cfg.model.hidden_size, cfg.model.num_layers, cfg.model.num_heads) == (512, 12, 8)
    opt = cfg.optim.optimizer
    assert (opt._target_, opt.lr, list(opt.betas)) == ("torch.optim.AdamW", 1e-4, [0.8, 0.95])
    assert cfg.optim.weight_decay == 0.01
    assert cfg.optim.scheduler.warmup_steps == 5000 and cfg.optim.scheduler.decay == "constant"
    assert cfg.task.model.mode._target_.endswith("MaskedMode") and cfg.task.model.mode.mask_ratio == 0.8
    ar = compose_train(["experiment=tts_parallel", "task/tts/parallel/mode@task.model.mode=ar"])
    assert ar.task.model.mode._target_.endswith("AutoregressiveMode")
