"""The embedded espeak-ng corpus: deterministic, cached, resumable, readable, and real speech."""

import filecmp
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiolm.cli import prepare
from audiolm.data.corpora import espeak
from audiolm.data.corpora import speech as embedded
from audiolm.data.corpora.speech import SPEAKERS, Speaker, generate_sentences, synthesize_corpus
from audiolm.data.manifest import read_manifest

N = 24  # three utterances per speaker: enough for one val and two train each
needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason=f"espeak-ng not installed ({espeak.INSTALL_HINT})"
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    if shutil.which("espeak-ng") is None:
        pytest.skip(f"espeak-ng not installed ({espeak.INSTALL_HINT})")
    return synthesize_corpus(tmp_path_factory.mktemp("a"), n_utterances=N, workers=2, progress=False)


def forbid_espeak(monkeypatch):
    def run(*args, **kwargs):
        raise AssertionError(f"espeak-ng was run: {args}")

    monkeypatch.setattr(espeak.subprocess, "run", run)


def test_sentences_are_deterministic_and_varied():
    texts = generate_sentences(300, seed=0)
    assert texts == generate_sentences(300, seed=0)
    assert texts != generate_sentences(300, seed=1)
    assert len(set(texts)) == 300
    assert all(5 <= len(t.split()) <= 14 and t[0].isupper() and t[-1] in ".?" for t in texts)
    assert sum(t.endswith("?") for t in texts) > 30  # questions as well as statements


@needs_espeak
def test_speakers_are_installed_non_mbrola_voices():
    out = subprocess.run(["espeak-ng", "--voices=variant"], capture_output=True, text=True).stdout
    langs = subprocess.run(["espeak-ng", "--voices=en"], capture_output=True, text=True).stdout.split()
    assert len({s.name for s in SPEAKERS}) == len({s.voice for s in SPEAKERS}) == len(SPEAKERS) == 8
    for s in SPEAKERS:
        lang, variant = s.voice.split("+")
        assert lang in langs and f"!v/{variant}" in out, s
        assert "mb" not in lang


def test_manifest_rows_match_audio_files(corpus):
    rows = read_manifest(corpus)
    assert len(rows) == N and len({r.id for r in rows}) == N
    for r in rows:
        assert r.path == f"wavs/{r.speaker}/{r.id}.wav"  # relative to the manifest's folder
        info = sf.info(str(r.resolve(corpus.parent)))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert abs(info.frames / info.samplerate - r.duration) < 1e-3
        assert 1.0 < r.duration < 6.0
        assert r.text and r.extra["voice"] == next(s.voice for s in SPEAKERS if s.name == r.speaker)
    assert not list(corpus.parent.rglob("*.partial*")) and not list(corpus.parent.rglob("*.espeak.wav"))


def test_every_speaker_is_in_train_and_val(corpus):
    splits = defaultdict(set)
    for r in read_manifest(corpus):
        splits[r.extra["split"]].add(r.speaker)
    assert splits.keys() == {"train", "val"}
    assert splits["train"] == splits["val"] == {s.name for s in SPEAKERS}


def test_audio_is_trimmed_non_silent_speech(corpus):
    for r in read_manifest(corpus):
        x, sr = sf.read(str(r.resolve(corpus.parent)), dtype="float32")
        frames = x[: len(x) // 160 * 160].reshape(-1, 160)  # 10 ms
        rms = np.sqrt((frames**2).mean(axis=1))
        voiced = np.flatnonzero(rms > 0.01)
        assert np.sqrt((x**2).mean()) > 0.02 and np.abs(x).max() < 0.99  # audible, not clipped
        assert len(voiced) > 0.4 * len(rms)  # mostly speech, not padding
        assert voiced[0] * 0.01 < 0.2 and (len(rms) - voiced[-1]) * 0.01 < 0.25  # edges trimmed
        spectrum = np.abs(np.fft.rfft(x))
        band = spectrum[int(80 * len(x) / sr) : int(4000 * len(x) / sr)].sum()
        assert band > 0.7 * spectrum.sum()  # energy sits in the speech band, not in noise


def test_synthesis_is_bit_exact_across_runs_and_worker_counts(corpus, tmp_path):
    other = synthesize_corpus(tmp_path, n_utterances=N, workers=1, progress=False)
    assert other.relative_to(tmp_path) == corpus.relative_to(corpus.parent.parent)  # same hash folder
    assert other.read_bytes() == corpus.read_bytes()
    for r in read_manifest(corpus):
        assert filecmp.cmp(r.resolve(corpus.parent), r.resolve(other.parent), shallow=False), r.id


def test_cache_hit_does_not_run_espeak(corpus, monkeypatch):
    forbid_espeak(monkeypatch)
    monkeypatch.setenv("PATH", "")  # not even a lookup of the binary is needed
    before = {p: p.stat().st_mtime_ns for p in corpus.parent.rglob("*")}
    assert synthesize_corpus(corpus.parent.parent, n_utterances=N, progress=False) == corpus
    assert {p: p.stat().st_mtime_ns for p in corpus.parent.rglob("*")} == before


def test_other_settings_land_in_another_folder(corpus):
    def folder(seed, sr):
        return f"embedded-{embedded._corpus_hash(embedded._plan(N, seed), sr)}"

    assert corpus.parent.name == folder(0, 16000)
    assert len({folder(seed, sr) for seed in (0, 1) for sr in (16000, 24000)}) == 4


def test_interrupted_run_is_resumed(corpus, tmp_path, monkeypatch):
    # An interrupted run: no manifest, one WAV missing, a leftover temporary file.
    folder = tmp_path / corpus.parent.name
    shutil.copytree(corpus.parent, folder)
    (folder / "manifest.jsonl").unlink()
    victim = read_manifest(corpus)[5]
    (folder / victim.path).rename(folder / victim.path.replace(".wav", ".partial.wav"))
    calls = []
    real_run = subprocess.run
    monkeypatch.setattr(espeak.subprocess, "run", lambda cmd, **kw: calls.append(cmd) or real_run(cmd, **kw))
    manifest = synthesize_corpus(tmp_path, n_utterances=N, progress=False)
    assert len(calls) == 1 and calls[0][-1] == victim.text
    assert manifest.read_bytes() == corpus.read_bytes()
    assert (folder / victim.path).read_bytes() == victim.resolve(corpus.parent).read_bytes()


def test_missing_espeak_gives_install_command(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match="sudo apt-get install -y espeak-ng"):
        synthesize_corpus(tmp_path / "data", n_utterances=N, progress=False)
    assert not list((tmp_path / "data").rglob("manifest.jsonl"))


@needs_espeak
def test_failed_synthesis_names_voice_and_text(tmp_path, monkeypatch):
    speakers = (Speaker("ok", "en-us", 50, 170), Speaker("bad", "xx-nope", 50, 170))
    monkeypatch.setattr(embedded, "SPEAKERS", speakers)
    with pytest.raises(RuntimeError, match="xx-nope") as err:
        synthesize_corpus(tmp_path, n_utterances=4, progress=False)
    assert any(text in str(err.value) for text in generate_sentences(4))
    assert not list(tmp_path.rglob("manifest.jsonl"))


def test_too_few_utterances_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="n_utterances"):
        synthesize_corpus(tmp_path, n_utterances=len(SPEAKERS), progress=False)


def test_cli_reports_manifest_and_summary(corpus, monkeypatch, capsys):
    forbid_espeak(monkeypatch)
    root = corpus.parent.parent
    assert prepare.main(["synthetic", "--root", str(root), "--n", str(N), "--no-progress"]) == corpus
    out = capsys.readouterr().out
    assert "manifest:" in out and "us_male" in out and "total" in out and str(N) in out
