"""Speech fraction judge (silero-vad): espeak speech is nearly all speech; silence and noise are none."""

from __future__ import annotations

import pytest
import torch

from audiolm.judges.base import JudgeWarning
from audiolm.judges.vad import SpeechFractionJudge


@pytest.fixture(scope="module")
def judge():
    return SpeechFractionJudge()


def test_speech_is_speech_and_silence_is_not(judge, known, say):
    speech = say(known.held_out[0])
    clips = [speech, known.white_noise(), known.silence()]
    with pytest.warns(JudgeWarning, match="clip 2: silent"):
        scores = judge.score(clips)
    fraction = scores.per_clip["speech_fraction"]
    # Measured: espeak sentences 0.99 (trimmed clips); white noise 0.0.
    assert fraction[0] > 0.8
    assert fraction[1] < 0.1
    assert fraction[2] == 0.0


def test_half_silence_halves_the_fraction(judge, known, say):
    speech = say(known.held_out[0])
    padded = type(speech)(torch.cat([speech.wav, torch.zeros_like(speech.wav)], dim=1), speech.sample_rate)
    full, half = judge.score([speech, padded]).per_clip["speech_fraction"]
    assert half == pytest.approx(full / 2, abs=0.1)


def test_loading_silero_keeps_torch_threads():
    before = torch.get_num_threads()
    SpeechFractionJudge()
    assert torch.get_num_threads() == before


def test_broken_clips_score_zero(judge, known):
    with pytest.warns(JudgeWarning, match="clip 1: contains NaN"):
        scores = judge.score([c for c, _ in known.broken()])
    assert scores.per_clip["speech_fraction"] == [0.0] * 4
