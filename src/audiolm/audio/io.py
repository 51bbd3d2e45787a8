"""Audio file I/O: read any soundfile-readable file as mono float at a target rate, write WAVs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF


def load_audio(path: str | Path, sample_rate: int, offset: float = 0.0, duration: float | None = None) -> torch.Tensor:
    """Read ``path`` as mono float32 at ``sample_rate`` -> wav: [1, T]."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"audio file not found: {path}")
    with sf.SoundFile(str(path)) as f:
        sr = f.samplerate
        start = int(round(offset * sr))
        frames = -1 if duration is None else int(round(duration * sr))
        f.seek(start)
        data = f.read(frames, dtype="float32", always_2d=True)  # [T, C]
    return resample(torch.from_numpy(np.ascontiguousarray(data.mean(axis=1)))[None], sr, sample_rate)


def resample(wav: torch.Tensor, from_rate: int, to_rate: int) -> torch.Tensor:
    """wav [..., T] at ``from_rate`` -> at ``to_rate`` (unchanged when the rates agree)."""
    return wav if from_rate == to_rate else AF.resample(wav, from_rate, to_rate)


def save_audio(path: str | Path, wav: torch.Tensor, sample_rate: int) -> Path:
    """Write wav: [1, T] or [T] as 16-bit PCM WAV, clipping to [-1, 1]."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = wav.detach().float().cpu().reshape(-1).clamp(-1, 1).numpy()
    sf.write(str(path), data, sample_rate, subtype="PCM_16")
    return path
