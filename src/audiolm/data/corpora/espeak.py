"""espeak-ng as a speech source for the synthesised corpora (the embedded TTS corpus and the
embedded caption corpus): find it, render one utterance, trim the uneven silence it pads with."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from audiolm.errors import MissingToolError

INSTALL_HINT = "sudo apt-get install -y espeak-ng"
TRIM_DB = 40.0  # frames this far below the loudest 10 ms frame count as silence
TRIM_PAD_S = 0.08  # silence kept before the first and after the last voiced frame


def find_espeak() -> str:
    """The espeak-ng executable, or an error that says how to install it."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise MissingToolError(
            "espeak-ng was not found on PATH; the embedded corpora are synthesised with it. "
            f"Install it with: {INSTALL_HINT}  (`make demo` does this when run as root)"
        )
    return exe


def speak(
    exe: str,
    text: str,
    scratch: Path,
    voice: str,
    pitch: int,
    speed: int,
    sample_rate: int,
    amplitude: int | None = None,
) -> np.ndarray:
    """Render ``text`` through a scratch WAV (removed after) -> mono float32 samples at ``sample_rate``,
    leading and trailing silence trimmed.

    Raises when espeak-ng fails or renders silence (a voice variant that is not installed does)."""
    cmd = [exe, "-v", voice, "-p", str(pitch), "-s", str(speed), "-w", str(scratch), text]
    if amplitude is not None:
        cmd[1:1] = ["-a", str(amplitude)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    what = f"voice {voice!r}, text {text!r}"
    if proc.returncode != 0 or not scratch.is_file():
        raise RuntimeError(
            f"espeak-ng failed (exit {proc.returncode}) for {what}: {proc.stderr.strip() or 'no output file'}"
        )
    data, sr = sf.read(str(scratch), dtype="float32", always_2d=True)
    scratch.unlink()
    mono = data.mean(axis=1)
    if not np.any(mono):
        raise RuntimeError(f"espeak-ng produced silence for {what}; is the voice variant installed?")
    wav = torch.from_numpy(np.ascontiguousarray(trim_silence(mono, sr)))
    return AF.resample(wav, sr, sample_rate).numpy()


def trim_silence(x: np.ndarray, sr: int) -> np.ndarray:
    """Cut leading/trailing silence down to ``TRIM_PAD_S``; espeak-ng pads clips unevenly."""
    hop = sr // 100
    n = len(x) // hop
    rms = np.sqrt(np.mean(x[: n * hop].reshape(n, hop) ** 2, axis=1) + 1e-12)
    voiced = np.flatnonzero(rms > rms.max() * 10 ** (-TRIM_DB / 20))
    pad = int(TRIM_PAD_S * sr)
    return x[max(0, voiced[0] * hop - pad) : min(len(x), (voiced[-1] + 1) * hop + pad)]
