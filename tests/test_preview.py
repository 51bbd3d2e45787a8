"""Codec preview: the reconstruction metrics, the level choice, and the written report."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch

from audiolm.codecs.melvq import MelVQCodec
from audiolm.data.manifest import Utterance
from audiolm.errors import ConfigError
from audiolm.metrics.audio import log_mel_distance, si_sdr
from audiolm.preview import levels_to_try, pick_clips, round_trip
from audiolm.preview_judging import judge_names, transcripts
from audiolm.preview_report import markdown_table, plot


def test_si_sdr_is_scale_invariant_and_exact_for_orthogonal_noise():
    g = torch.Generator().manual_seed(0)
    ref = torch.randn(1, 8000, generator=g)
    ref -= ref.mean()
    noise = torch.randn(1, 8000, generator=g)
    noise -= noise.mean()
    noise -= (noise * ref).sum() / ref.pow(2).sum() * ref  # orthogonal to ref
    noise *= ref.norm() / noise.norm() / 10  # 20 dB below the signal
    assert si_sdr(ref, ref + noise).item() == pytest.approx(20.0, abs=1e-3)
    assert si_sdr(ref, 0.3 * (ref + noise)).item() == pytest.approx(20.0, abs=1e-3)
    assert si_sdr(ref, torch.randn(1, 8000, generator=g)).item() < -10  # unrelated noise


def test_log_mel_distance():
    wav = torch.randn(2, 16000, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(log_mel_distance(wav, wav, 16000), torch.zeros(2))
    assert torch.allclose(log_mel_distance(wav, 0.5 * wav, 16000), torch.full((2,), math.log(2)), atol=1e-4)
    # codecs pad to whole frames: the extra tail is ignored
    assert torch.allclose(log_mel_distance(wav, torch.cat([wav, wav[:, :100]], -1), 16000), torch.zeros(2))


def test_levels_to_try():
    codec = MelVQCodec(n_codebooks=4)
    levels, notes = levels_to_try(codec, [8, 1, 2, 4, 2])
    assert levels == [1, 2, 4] and len(notes) == 1 and "n_q=8" in notes[0]
    codec.residual = False  # e.g. FSQ: each codebook holds its own latent dimensions
    levels, notes = levels_to_try(codec, [1, 2])
    assert levels == [4] and "not residual" in notes[0]
    with pytest.raises(ConfigError, match="preview.n_q"):
        levels_to_try(MelVQCodec(n_codebooks=4), [8, 16])


@pytest.fixture()
def corpus(tmp_path):
    rows = []
    for i, seconds in enumerate([1.2, 0.8, 0.0005, 1.0]):
        n = int(16000 * seconds)
        t = np.arange(n) / 16000
        path = tmp_path / f"c{i}.wav"
        sf.write(path, 0.2 * np.sin(2 * np.pi * (150 + 50 * i) * t) * (1 + np.sin(2 * np.pi * 3 * t)), 16000)
        rows.append(Utterance(path=str(path), duration=seconds, id=f"c{i}"))
    rows.append(Utterance(path=str(tmp_path / "missing.wav"), duration=1.0, id="missing"))
    return rows, tmp_path


def test_pick_clips_skips_unreadable_and_too_short(corpus):
    rows, root = corpus
    clips = pick_clips(rows, root, MelVQCodec(), n_clips=10, seconds=0.5, seed=0)  # c2 is under one frame
    assert sorted(i for i, _ in clips) == ["c0", "c1", "c3"]
    assert all(w.shape == (1, 8000) for _, w in clips)


def test_round_trip_writes_wavs_table_json_and_plot(corpus, tmp_path):
    rows, root = corpus
    codec = MelVQCodec(n_codebooks=3, codebook_size=16, kmeans_iters=5)
    clips = pick_clips(rows, root, codec, n_clips=2, seconds=1.0, seed=0)
    codec.fit([w for _, w in clips])
    out = tmp_path / "preview"
    report = round_trip(codec, clips, [1, 3], out, "cpu")
    for clip in ("clip00", "clip01"):
        for name in ("original", "nq1", "nq3"):
            info = sf.info(out / clip / f"{name}.wav")
            assert info.samplerate == 16000 and info.frames > 0
    assert list(report["summary"]) == ["1", "3"]
    assert report["summary"]["3"]["kbps"] == pytest.approx(3 * 4 * 50 / 1000)
    # more levels describe the mel frames better
    assert report["summary"]["3"]["log_mel_distance"] < report["summary"]["1"]["log_mel_distance"]
    json.dumps(report)
    table = markdown_table({**report, "notes": ["n_q=8 skipped"]})
    assert table.count("\n| ") == 3 and "- n_q=8 skipped" in table
    plot(report, out / "preview.png")
    assert (out / "preview.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_preview_entry_point_on_a_prepared_folder(tmp_path):
    """`python preview.py data=folder data.root=...`: media prepared, clips round-tripped, report written."""
    from conftest import run_entry

    voices = tmp_path / "voices" / "speaker1"
    voices.mkdir(parents=True)
    t = np.arange(2 * 16000) / 16000
    for i in range(3):
        sf.write(
            voices / f"u{i}.wav", 0.3 * np.sin(2 * np.pi * (120 + 40 * i) * t) * (1 + np.sin(2 * np.pi * 2 * t)), 16000
        )
    out = tmp_path / "out"
    run_entry(
        "preview.py",
        "codec=mulaw",
        "data=folder",
        f"data.root={tmp_path / 'voices'}",
        f"paths.data_dir={tmp_path / 'data'}",
        "preview.n_q=[1,2]",
        "preview.clips=2",
        "preview.seconds=0.5",
        f"preview.out_dir={out}",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    report = json.loads((out / "preview.json").read_text())
    assert list(report["summary"]) == ["1"] and "n_q=2 skipped" in report["notes"][0]
    assert report["summary"]["1"]["si_sdr_db"] > 20  # 8-bit mu-law keeps a clean tone
    assert {"stoi", "pesq", "dnsmos_ovrl"} <= set(report["summary"]["1"]) and "wer" not in report["summary"]["1"]
    assert any(note.startswith("no WER: the previewed clips have no transcript") for note in report["notes"])
    assert (out / "clip01" / "nq1.wav").is_file() and (out / "preview.png").is_file()


def test_a_codec_that_rebuilds_the_phase_gets_no_si_sdr(tmp_path):
    """`python preview.py codec=melvq codec.n_codebooks=8`: the documented key needs no `+`, and the report
    leaves out SI-SDR, which only measures a Griffin-Lim phase, and says why."""
    from conftest import run_entry

    voices = tmp_path / "voices" / "speaker1"
    voices.mkdir(parents=True)
    t = np.arange(2 * 16000) / 16000
    for i in range(2):
        sf.write(voices / f"u{i}.wav", 0.3 * np.sin(2 * np.pi * (150 + 50 * i) * t), 16000)
    out = tmp_path / "out"
    run_entry(
        "preview.py",
        "codec=melvq",
        "codec.n_codebooks=8",
        "codec.codebook_size=16",
        "data=folder",
        f"data.root={tmp_path / 'voices'}",
        f"paths.data_dir={tmp_path / 'data'}",
        "preview.n_q=[1,8]",
        "preview.judges=[]",
        "preview.clips=2",
        "preview.seconds=0.5",
        f"preview.out_dir={out}",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    report = json.loads((out / "preview.json").read_text())
    assert list(report["summary"]) == ["1", "8"] and "si_sdr_db" not in report["summary"]["8"]
    assert any("no SI-SDR" in note and "Griffin-Lim" in note for note in report["notes"])
    header = (out / "preview.md").read_text().splitlines()[2]
    assert "SI-SDR" not in header and "STOI" not in header and "input" not in report  # preview.judges=[]


def test_judge_names_are_a_list_of_known_judges():
    assert judge_names(["asr", "intrusive", "asr"]) == ["asr", "intrusive"] and judge_names([]) == []
    with pytest.raises(ConfigError, match=r"preview.judges=\[\] turns"):
        judge_names("asr")
    with pytest.raises(ConfigError, match="unknown judge.*'stoi'"):
        judge_names(["stoi"])


def test_wer_texts_never_reach_the_lm_and_cut_clips_get_no_wer():
    rows = [
        Utterance(path="a.wav", duration=2.0, id="a", text="the cat sat"),
        Utterance(path="b.wav", duration=12.0, id="b", text="a dog ran"),
        Utterance(path="c.wav", duration=2.0, id="c", text="The cat sat."),  # a previewed sentence again
        Utterance(path="d.wav", duration=2.0, id="d", text="birds sing"),
        Utterance(path="e.wav", duration=2.0, id="e"),
    ]
    texts, lm_texts, notes = transcripts(rows, ["a", "b", "e"], seconds=10.0)
    assert texts == ["the cat sat", None, None] and lm_texts == ["birds sing"]
    assert "clip01 (b) is cut to 10 s" in notes[0] and "no WER" in notes[0]


SENTENCES = 14  # 2 previewed, the other 12 build the ASR judge's LM


@pytest.fixture(scope="module")
def espeak_voices(tmp_path_factory):
    """A data=folder corpus of espeak sentences, each with its transcript in a sidecar .txt."""
    from audiolm.data.corpora.espeak import find_espeak, speak
    from audiolm.data.corpora.speech import SPEAKERS, generate_sentences

    root = tmp_path_factory.mktemp("espeak_voices")
    folder = root / "voices" / "speaker1"
    folder.mkdir(parents=True)
    exe, voice = find_espeak(), SPEAKERS[1]
    for i, text in enumerate(generate_sentences(SENTENCES, seed=3)):
        wav = speak(exe, text, root / "x.wav", voice.voice, voice.pitch, voice.speed, 16000, voice.amplitude)
        sf.write(folder / f"u{i:02d}.wav", wav, 16000)
        (folder / f"u{i:02d}.txt").write_text(text + "\n")
    return root


def _preview_speech(root, out, *overrides):
    from conftest import run_entry

    proc = run_entry(
        "preview.py",
        "data=folder",
        f"data.root={root / 'voices'}",
        f"paths.data_dir={root / 'data'}",
        "preview.clips=2",
        f"preview.out_dir={out}",
        f"hydra.run.dir={out / 'run'}",
        *overrides,
    )
    return json.loads((out / "preview.json").read_text()), (out / "preview.md").read_text(), proc.stdout


def test_judged_preview_of_espeak_speech(espeak_voices, tmp_path):
    """8-bit mu-law keeps speech near-perfect: STOI/PESQ high, WER and DNSMOS at the originals'; 2-bit
    mu-law is clearly worse. WER is judged by an LM that never saw the two previewed sentences."""
    report, table, stdout = _preview_speech(espeak_voices, tmp_path / "bits8", "codec=mulaw", "preview.n_q=[1]")
    s, ref = report["summary"]["1"], report["input"]
    # Measured: stoi 0.999, pesq 4.48, wer 0.357 as for the input, dnsmos_ovrl 2.35 against the input's 2.36.
    assert s["stoi"] > 0.9 and s["pesq"] > 3.5
    assert abs(s["wer"] - ref["wer"]) <= 0.15 and ref["wer"] < 0.6, report["clips"]
    assert 1.0 <= s["dnsmos_ovrl"] <= 5.0 and abs(s["dnsmos_ovrl"] - ref["dnsmos_ovrl"]) < 0.5
    assert "dnsmos_p808" in s and "dnsmos_p808" in ref
    clip = report["clips"]["clip00"]
    assert {"wer", "transcript", "stoi", "pesq", "dnsmos_ovrl"} <= set(clip["scores"]["1"])
    assert {"wer", "transcript", "dnsmos_ovrl"} <= set(clip["input"])
    assert any(f"domain LM from the {SENTENCES - 2} corpus text(s) not previewed" in n for n in report["notes"])
    header = table.splitlines()[2]
    for column in ("STOI ↑", "PESQ ↑", "DNSMOS OVRL ↑", "DNSMOS P.808 ↑", "WER ↓", "SI-SDR dB ↑"):
        assert column in header
    assert "\n| input | — |" in table and "higher is better" in table and table in stdout

    coarse, _, _ = _preview_speech(
        espeak_voices,
        tmp_path / "bits2",
        "codec=mulaw",
        "codec.bits=2",
        "preview.n_q=[1]",
        "preview.judges=[intrusive]",
    )
    # Measured: 2-bit mu-law stoi 0.51, pesq 1.04.
    assert coarse["summary"]["1"]["stoi"] < s["stoi"] - 0.1 and coarse["summary"]["1"]["pesq"] < s["pesq"] - 1
    assert "wer" not in coarse["summary"]["1"] and not coarse.get("input")
