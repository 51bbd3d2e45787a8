"""What the web UI's tests serve: the session's tiny runs (an audio LM, a VALL-E TTS, a captioner) copied under
one runs root with an export of the audio LM, and clips to upload, good and bad."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 16_000


def make_runs_root(root: Path, lm: Path, tts: Path, caption: Path) -> Path:
    """``root`` holding ``lm/``, ``tts/``, ``caption/`` and ``exports/lm.safetensors``."""
    from audiolm.cli import export

    for name, run in (("lm", lm), ("tts", tts), ("caption", caption)):
        shutil.copytree(run, root / name, ignore=shutil.ignore_patterns("tensorboard", "samples"))
    export.main([f"ckpt={root / 'lm'}", "--out", str(root / "exports" / "lm.safetensors")])
    return root


def corpus_clip(data_dir: Path) -> Path:
    """A speech clip of the synthetic corpus (16 kHz), there once a run of the session has trained."""
    return sorted(data_dir.glob("embedded/*/wavs/us_male/*.wav"))[0]


def long_clip(data_dir: Path, out: Path, seconds: float) -> Path:
    """Corpus clips joined into one of ``seconds``."""
    clips = [sf.read(p)[0] for p in sorted(data_dir.glob("embedded/*/wavs/*/*.wav"))]
    wav = np.concatenate(clips)
    assert len(wav) >= seconds * RATE, "the tiny corpus is shorter than the clip asked for"
    sf.write(out, wav[: int(seconds * RATE)], RATE)
    return out


def bad_clips(folder: Path) -> dict[str, Path]:
    """Uploads the page must refuse: text named .wav, an empty file, 10 minutes (silent FLAC: a small file)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notes.wav").write_text("this is not audio\n")
    (folder / "empty.wav").write_bytes(b"")
    sf.write(folder / "ten_minutes.flac", np.zeros(RATE * 600, np.float32), RATE)
    return {p.name: p for p in sorted(folder.iterdir())}


def noise_wav(path: Path, seconds: float) -> Path:
    """White noise: a WAV of about ``seconds * 32`` kB."""
    rng = np.random.default_rng(0)
    sf.write(path, (rng.standard_normal(int(seconds * RATE)) * 0.1).astype(np.float32), RATE, subtype="PCM_16")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
