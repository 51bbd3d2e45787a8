"""TTS text front-end: phonemes, vocabulary, sentence splitting, Whisper transcripts, corpus annotation."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import soundfile as sf
import torch

from audiolm.data.manifest import Utterance, read_manifest, write_manifest
from audiolm.data.prepare.similar import similar_utterances
from audiolm.data.tts import TTSAnnotate
from audiolm.errors import ConfigError, DataError, MissingFileError
from audiolm.text.frontend import TextFrontend
from audiolm.text.sentences import split_sentences
from audiolm.text.transcribe import WhisperTranscriber
from audiolm.text.vocab import PhonemeVocab

from support.tts_models import tiny_whisper_checkpoint


@pytest.fixture(scope="module")
def frontend():
    return TextFrontend("en-us")


def test_text_becomes_ipa_phonemes_with_stress_and_punctuation(frontend):
    phonemes = frontend.phonemes("Hello world, how are you?")
    assert "ˈ" in phonemes and "," in phonemes and phonemes.endswith("?")
    ids = frontend.ids("Hello world")
    assert 0 not in ids and frontend.vocab.decode(ids) == frontend.phonemes("Hello world")


def test_other_languages_phonemise_into_the_same_inventory():
    fr = TextFrontend("fr-fr")
    ids = fr.ids("Bonjour, ça va très bien.")
    assert 0 not in ids, "every French symbol is in the default inventory"


@pytest.mark.parametrize(
    "text,message",
    [("", "empty"), ("   ", "empty"), ("!!! ... ???", "nothing to pronounce"), ("-- ** --", "nothing to pronounce")],
)
def test_unspeakable_text_is_a_clear_error(frontend, text, message):
    with pytest.raises(DataError, match=message):
        frontend.ids(text)


def test_unsupported_language_names_close_matches():
    with pytest.raises(ConfigError, match=r"'en-xx' is not supported.*en-us.*espeak-ng --voices"):
        TextFrontend("en-xx")


def test_vocab_round_trip_and_unknown_symbols(caplog):
    vocab = PhonemeVocab()
    assert PhonemeVocab.from_json(vocab.to_json()) == vocab and len(vocab) > 300
    assert vocab.encode("a☃b")[1] == 0 and "☃" in caplog.text


def test_sentence_splitting_keeps_every_word_and_respects_the_limit():
    text = "First one. Second, longer sentence here!  Third?\nFourth line; " + "word " * 60
    pieces = split_sentences(text, max_chars=80)
    assert pieces[:3] == ["First one.", "Second, longer sentence here!", "Third?"]
    assert all(len(p) <= 80 for p in pieces)
    assert " ".join(pieces).split() == text.split()
    assert split_sentences("   ") == []


@pytest.fixture(scope="module")
def whisper_checkpoint(tmp_path_factory):
    return tiny_whisper_checkpoint(tmp_path_factory.mktemp("whisper"))


def test_whisper_transcribes_from_a_local_checkpoint(whisper_checkpoint):
    asr = WhisperTranscriber(str(whisper_checkpoint), language="en")
    text = asr(torch.randn(1, 8000) * 0.1, 8000)  # random weights: any string, but a string from the real pipeline
    assert isinstance(text, str)


def test_whisper_without_a_checkpoint_says_what_to_set(tmp_path):
    with pytest.raises(ConfigError, match="my.key=/path/to/model.pt"):
        WhisperTranscriber(None, config_key="my.key")
    with pytest.raises(MissingFileError, match="Whisper checkpoint not found"):
        WhisperTranscriber(str(tmp_path / "none.pt"))


def _corpus(tmp_path, texts, speakers):
    rows = []
    for i, (text, speaker) in enumerate(zip(texts, speakers, strict=True)):
        t = np.arange(16000 // 2) / 16000
        sf.write(
            tmp_path / f"{i}.wav", 0.3 * np.sin(2 * np.pi * (150 + 60 * i) * t) * (1 + 0.2 * np.sin(9 * i * t)), 16000
        )
        rows.append(Utterance(path=f"{i}.wav", duration=0.5, id=f"u{i}", speaker=speaker, text=text))
    return write_manifest(tmp_path / "manifest.jsonl", rows)


def test_annotation_adds_phonemes_skips_unspeakable_rows_and_is_cached(tmp_path, frontend):
    manifest = _corpus(tmp_path, ["Hello there.", "...", "Good morning."], ["a", "a", "b"])
    annotate = TTSAnnotate(frontend, str(tmp_path / "cache"))
    out = annotate(manifest)
    rows = read_manifest(out)
    assert [r.id for r in rows] == ["u0", "u2"] and all(r.extra["phonemes"] for r in rows)
    assert rows[0].path == str((tmp_path / "0.wav").resolve())
    report = json.loads((out.parent / "annotate_report.json").read_text())
    assert report["skipped"][0]["id"] == "u1"
    assert annotate(manifest) == out and out.stat().st_mtime_ns == out.stat().st_mtime_ns


def test_missing_transcripts_need_a_whisper_checkpoint(tmp_path, frontend, whisper_checkpoint):
    manifest = _corpus(tmp_path, ["Hello there.", ""], ["a", "a"])
    with pytest.raises(ConfigError, match=r"1 of 2 utterances have no transcript.*data.annotate.whisper_checkpoint"):
        TTSAnnotate(frontend, str(tmp_path / "cache"))(manifest)
    out = TTSAnnotate(
        frontend, str(tmp_path / "cache"), whisper_checkpoint=str(whisper_checkpoint), whisper_language="en"
    )(manifest)
    report = json.loads((out.parent / "annotate_report.json").read_text())
    assert report["n_transcribed"] == 1


def test_similar_prompts_stay_within_the_speaker(tmp_path):
    manifest = _corpus(tmp_path, ["a"] * 5, ["x", "x", "x", "y", "y"])
    rows = read_manifest(manifest)
    for r in rows:
        r.path = str(r.resolve(tmp_path))
    similar = similar_utterances(rows, k=2)
    assert similar[0] and set(similar[0]) <= {"u1", "u2"} and len(similar[0]) == 2
    assert similar[3] == ["u4"] and similar[4] == ["u3"]


def test_joined_function_words_are_not_reported_as_a_mismatch(caplog):
    """espeak-ng joins "in the" into one phoneme word in connected speech; that is right, and not worth a warning."""
    from audiolm.text.phonemize import Phonemizer

    with caplog.at_level(logging.WARNING):
        (phonemes,) = Phonemizer("en-us")(["We will sell the yellow kite in the spring."])
    assert "ɪnðə" in phonemes and "mismatch" not in caplog.text
