"""The judge interface on a model-free judge: validation, floors, warnings, resampling, means."""

from __future__ import annotations

import math

import numpy as np
import pytest

from audiolm.judges.base import Batch, Judge, JudgeWarning, Scores, to_audio


class Loudness(Judge):
    name = "loudness"
    sample_rate = 8000
    needs_texts = True
    floor = {"peak": -1.0, "n": 0.0}

    def _score(self, batch: Batch, notes: list[str]) -> dict[int, dict[str, float]]:
        return {i: {"peak": float(np.abs(batch.wavs[i]).max()), "n": len(batch.wavs[i])} for i in batch.valid}


def test_scores_resamples_and_means():
    clips = [to_audio(np.full(16000, 0.5, np.float32), 16000), to_audio(np.full(8000, 0.25, np.float32), 8000)]
    scores = Loudness().score(clips, texts=["a", "b"])
    assert isinstance(scores, Scores)
    assert scores.per_clip["n"] == [8000.0, 8000.0]  # both at the judge's 8 kHz
    assert scores.mean["n"] == 8000.0
    assert scores.flat("judge/")["judge/peak"] == scores.mean["peak"]
    assert scores.notes == []


def test_broken_clips_get_the_floor_and_a_warning(known):
    broken = known.broken()
    with pytest.warns(JudgeWarning) as record:
        scores = Loudness().score([c for c, _ in broken], texts=["x"] * len(broken))
    assert scores.per_clip["peak"] == [-1.0] * len(broken)
    messages = " | ".join(str(w.message) for w in record)
    for _, why in broken:
        assert why in messages


def test_bad_calls_say_what_to_pass():
    clip = to_audio(np.ones(8000, np.float32) * 0.1, 8000)
    with pytest.raises(ValueError, match="needs texts"):
        Loudness().score([clip])
    with pytest.raises(ValueError, match="2 texts for 1 clips"):
        Loudness().score([clip], texts=["a", "b"])
    with pytest.raises(TypeError, match="pass audiolm.tasks.inference.Audio"):
        Loudness().score([np.zeros(10)], texts=["a"])


def test_nan_scores_are_left_out_of_the_mean():
    class Nan(Loudness):
        def _score(self, batch, notes):
            return {0: {"peak": math.nan, "n": 1.0}, 1: {"peak": 0.5, "n": 1.0}}

    clip = to_audio(np.ones(8000, np.float32) * 0.1, 8000)
    assert Nan().score([clip, clip], texts=["a", "b"]).mean["peak"] == 0.5
