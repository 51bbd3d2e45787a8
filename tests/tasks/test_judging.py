"""The judged eval shared by the audio tasks: which texts the ASR judge's LM may hear, which held-out
utterances are sampled, and how scores land in the rows and the metrics."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from audiolm.errors import ConfigError
from audiolm.tasks.judging import EvalJudges, spread_over_speakers, training_texts


def datamodule(train: list[str], val: list[str]) -> SimpleNamespace:
    entries = [{"text": t} for t in [*train, *val]]
    return SimpleNamespace(
        store=SimpleNamespace(entries=entries),
        train_indices=list(range(len(train))),
        val_indices=list(range(len(train), len(entries))),
    )


def test_lm_texts_are_the_training_texts_never_the_held_out_ones():
    dm = datamodule(["The cat sat.", "A dog ran!", "", "a BIRD sang"], ["A bird sang.", "The fox hid."])
    assert training_texts(dm) == ["The cat sat.", "A dog ran!"], "a training text a held-out one also says is left out"
    assert training_texts(datamodule(["", ""], ["A bird sang."])) is None, "no texts: the general LM"


def test_samples_take_each_speaker_in_turn():
    assert spread_over_speakers(["a", "a", "b", "b", "c"], 3) == [0, 2, 4]
    assert spread_over_speakers(["a", "a", "b"], 3) == [0, 2, 1]
    assert spread_over_speakers([None, None], 5) == [0, 1], "unknown speakers count as distinct"


def test_unknown_judge_names_the_key_and_the_choices():
    with pytest.raises(ConfigError, match=r"eval.judges: unknown judge\(s\) \['utmos'\].*speech_fraction"):
        EvalJudges(["asr", "utmos"])


def test_non_english_without_whisper_skips_asr_with_a_note():
    notes = []
    judging = EvalJudges(["asr"], language="de", notes=notes)
    assert "asr" not in judging and "eval.asr_checkpoint" in notes[0]


def test_scores_land_in_rows_and_nan_means_are_left_out(known):
    notes = []
    judging = EvalJudges(["speaker"], notes=notes)
    clip = known.white_noise(1.0)
    rows = [{"file": "a.wav", "prompt": "p.wav"}, {"file": "b.wav", "prompt": "q.wav"}]
    metrics = judging.run("speaker", [clip, clip], rows, "x/", references=[clip, clip], speakers=["s", "s"])
    assert set(metrics) == {"x/sim_own"}, "one speaker: sim_other and sim_margin are NaN, so not metrics"
    assert rows[0]["sim_other"] is None and rows[0]["sim_own"] > 0.9
    assert any("no other speaker" in n for n in notes)
