"""The audio LM's one inference call: ContinueRequest in, AudioResult out, from audio or from codes."""

from __future__ import annotations

import torch

from audiolm.tasks.inference import Audio, ContinueRequest

from support.lm_models import tiny_lm as tiny_model


def test_unconditional_request_gives_n_clips_of_the_asked_length():
    result = tiny_model().generate(ContinueRequest(seconds=0.05, n=3, seed=0))
    assert len(result.audio) == len(result.codes) == 3 and result.prompt_seconds == 0
    assert all(c.shape == (1, 20) for c in result.codes)
    assert all(a.sample_rate == 400 and a.wav.shape == (1, 20) for a in result.audio)


def test_an_audio_prompt_is_encoded_and_kept_at_the_start():
    model = tiny_model()
    wav = torch.sin(torch.linspace(0, 60, 8000))[None] * 0.5  # 0.5 s at 16 kHz: resampled to the codec's 400 Hz
    prompt = Audio(wav, 16_000)
    result = model.generate(ContinueRequest(seconds=1.0, prompt=prompt, n=2, seed=0))
    expected = model.encode_audio(prompt)
    assert result.prompt_seconds == 0.5 and all(torch.equal(c[:, :200], expected) for c in result.codes)
    assert all(c.shape == (1, 400) for c in result.codes)


def test_the_seed_makes_a_request_repeatable():
    model = tiny_model()
    a, b = (model.generate(ContinueRequest(seconds=0.05, seed=7)).codes[0] for _ in range(2))
    assert torch.equal(a, b)
    assert not torch.equal(a, model.generate(ContinueRequest(seconds=0.05, seed=8)).codes[0])
