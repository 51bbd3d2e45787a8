"""Eval samples of an audio LM stay within what the model was trained on, warn before taking minutes, and
are judged on what the model generated only."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np

from audiolm.judges.base import to_audio
from audiolm.tasks.judging import EvalJudges
from audiolm.tasks.lm import samples

from support.lm_models import tiny_lm as tiny_model


def no_held_out_clips(max_frames: int) -> SimpleNamespace:
    return SimpleNamespace(store=SimpleNamespace(entries=[]), val_indices=[], max_frames=max_frames)


def test_samples_longer_than_the_training_window_are_cut_to_it(tmp_path, caplog):
    model = tiny_model()  # 400 frames a second
    with caplog.at_level(logging.WARNING):
        out = samples.write_lm_samples(
            model,
            no_held_out_clips(max_frames=40),
            tmp_path,
            n_samples=1,
            sample_seconds=1.0,
            prompt_seconds=0.05,
            batch_size=1,
            seed=0,
            judges=[],
        )
    assert out.rows[0]["seconds"] == 0.1 and "longer than the 0.1 s windows" in caplog.text


def test_samples_that_would_take_long_warn_with_the_estimate(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(samples, "LONG_SECONDS", 0.0)  # any estimate counts as long
    with caplog.at_level(logging.WARNING):
        samples.write_lm_samples(
            tiny_model(),
            no_held_out_clips(max_frames=400),
            tmp_path,
            n_samples=1,
            sample_seconds=0.5,
            prompt_seconds=0.05,
            batch_size=1,
            seed=0,
            judges=[],
        )
    assert "200 decoding steps each" in caplog.text and "Lower eval.sample_seconds" in caplog.text


def test_only_the_generated_part_of_a_continuation_is_judged(say):
    speech = say("Everyone agreed that the music was a little slow yesterday.")
    prompt_seconds = speech.seconds
    quiet = np.zeros(int(1.0 * speech.sample_rate), np.float32)  # the model "generated" silence
    continuation = to_audio(np.concatenate([speech.wav.numpy()[0], quiet]), speech.sample_rate)
    reference = to_audio(np.concatenate([speech.wav.numpy()[0], speech.wav.numpy()[0]]), speech.sample_rate)
    rows = [{"kind": "continuation", "file": "continuation_0.wav", "reference": "reference_0.wav"}]
    judging = EvalJudges(["speech_fraction"])
    metrics = samples.judge_continuations(judging, rows, [continuation], [speech], [reference], prompt_seconds)
    assert metrics["lm/speech_fraction"] == 0.0, "the speech of the prompt never counts"
    assert metrics["lm/ref_speech_fraction"] > 0.5, "the reference's part after the prompt is speech"
    assert rows[0]["speech_fraction"] == 0.0 and rows[0]["generated_seconds"] == 1.0
    whole = judging.run("speech_fraction", [continuation], [{"file": "whole"}], "lm/")
    assert whole["lm/speech_fraction"] > 0.5, "judged whole, the prompt's speech would have counted"
