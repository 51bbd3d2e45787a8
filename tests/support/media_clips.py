"""Audio made on the spot for the prepare and CLI tests: tones, espeak-ng speech, WAV files."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 16000


def tone(seconds: float, sr: int = SR, amp: float = 0.1, freq: float = 220.0, on: float = 1.0, period: float = 1.0):
    """A tone switched on for the first ``on`` share of every ``period`` seconds: mono float32 [T]."""
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t) * ((t % period) < on * period)).astype(np.float32)


def speak(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["espeak-ng", "-w", str(path), text], check=True, capture_output=True)
    return path


def write(path: Path, x: np.ndarray, sr: int = SR) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x, sr)
    return path
