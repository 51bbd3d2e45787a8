"""Clips whose right answer is known, for the judges' tests (fixtures, registered by tests/conftest.py):
espeak-ng sentences in the synthetic corpus's voices, white noise, silence, and the broken clips every
judge must survive."""

from __future__ import annotations

import numpy as np
import pytest

from audiolm.data.corpora.espeak import find_espeak, speak
from audiolm.data.corpora.speech import SPEAKERS, generate_sentences
from audiolm.judges.base import to_audio
from audiolm.tasks.inference import Audio

RATE = 22050  # not any judge's rate, so every judge has to resample
SENTENCES = generate_sentences(260, seed=0)
LM_TEXTS, HELD_OUT = SENTENCES[:250], SENTENCES[250:256]  # the LM never sees the sentences it is tested on
VOICE_A, VOICE_B = SPEAKERS[1], SPEAKERS[0]  # us_female, us_male


@pytest.fixture(scope="session")
def say(tmp_path_factory):
    """say(text, speaker=VOICE_A) -> Audio at RATE, cached per session."""
    exe, scratch, cache = find_espeak(), tmp_path_factory.mktemp("espeak") / "x.wav", {}

    def _say(text: str, speaker=VOICE_A) -> Audio:
        key = (text, speaker.name)
        if key not in cache:
            wav = speak(exe, text, scratch, speaker.voice, speaker.pitch, speaker.speed, RATE, speaker.amplitude)
            cache[key] = to_audio(wav, RATE)
        return cache[key]

    return _say


def add_noise(clip: Audio, std: float, seed: int = 0) -> Audio:
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(clip.wav.shape[-1]).astype(np.float32) * std
    return to_audio(clip.wav.numpy()[0] + noise, clip.sample_rate)


def white_noise(seconds: float = 2.0, std: float = 0.1, seed: int = 0) -> Audio:
    rng = np.random.default_rng(seed)
    return to_audio(rng.standard_normal(int(seconds * RATE)).astype(np.float32) * std, RATE)


def silence(seconds: float = 2.0) -> Audio:
    return to_audio(np.zeros(int(seconds * RATE), np.float32), RATE)


def broken_clips() -> list[tuple[Audio, str]]:
    """(clip, what the warning must say) for each kind of clip no judge can use."""
    nan = np.full(RATE, np.nan, np.float32)
    return [
        (to_audio(np.zeros(0, np.float32), RATE), "clip 0: empty"),
        (to_audio(nan, RATE), "clip 1: contains NaN"),
        (to_audio(np.full(200, 0.5, np.float32), RATE), "clip 2: too short"),
        (silence(1.0), "clip 3: silent"),
    ]


@pytest.fixture(scope="session")
def known():
    """The helpers above, for test modules (a conftest cannot be imported by name next to tests/conftest.py)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        rate=RATE,
        lm_texts=LM_TEXTS,
        held_out=HELD_OUT,
        voice_a=VOICE_A,
        voice_b=VOICE_B,
        add_noise=add_noise,
        white_noise=white_noise,
        silence=silence,
        broken=broken_clips,
    )
