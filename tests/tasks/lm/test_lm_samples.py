"""Eval samples of an audio LM stay within what the model was trained on, and warn before taking minutes."""

from __future__ import annotations

import logging
from types import SimpleNamespace

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
        )
    assert "200 decoding steps each" in caplog.text and "Lower eval.sample_seconds" in caplog.text
