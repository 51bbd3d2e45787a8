"""Whisper's log-mel input, batched: wav [B, T] at 16 kHz -> mel [B, n_mels, M], 100 frames a second.

The numbers are Whisper's (``whisper.audio.log_mel_spectrogram``): 25 ms Hann window, 10 ms hop,
Whisper's own mel filters, log10 floored 8 decades below the loudest bin, then ``(x + 4) / 4``.

Each row is computed as if its clip were alone: the clip is zero-padded (or cut) to its own
frame count, reflect-padded at its own edges as ``torch.stft(center=True)`` does, and floored
against its own loudest bin (Whisper's function takes one maximum over whatever it is given, so
a loud clip in a batch would raise every other clip's floor). Past a clip's frames the mel is 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from whisper.audio import HOP_LENGTH, N_FFT, SAMPLE_RATE, mel_filters

__all__ = ["HOP_LENGTH", "SAMPLE_RATE", "log_mel", "mel_frames"]


def mel_frames(n_samples: torch.Tensor) -> torch.Tensor:
    """Mel frames that cover ``n_samples`` [B], rounded up to an even count >= 2 (the encoder halves it)."""
    frames = torch.div(n_samples + HOP_LENGTH - 1, HOP_LENGTH, rounding_mode="floor")
    return ((frames + 1) // 2 * 2).clamp(min=2)


def log_mel(wav: torch.Tensor, frames: torch.Tensor, n_mels: int) -> torch.Tensor:
    """wav: [B, T] float at 16 kHz, frames: [B] mel frames per clip -> log-mel [B, n_mels, max(frames)]."""
    b, m = wav.shape[0], int(frames.max())
    half = N_FFT // 2
    rows = wav.new_zeros(b, m * HOP_LENGTH + 2 * half)
    for i, f in enumerate(frames.tolist()):
        clip = wav[i, : f * HOP_LENGTH].float()
        clip = F.pad(clip, (0, f * HOP_LENGTH - len(clip)))
        rows[i, : f * HOP_LENGTH + 2 * half] = F.pad(clip[None], (half, half), mode="reflect")[0]
    window = torch.hann_window(N_FFT, device=wav.device)
    stft = torch.stft(rows, N_FFT, HOP_LENGTH, window=window, center=False, return_complex=True)[..., :m]
    power = torch.view_as_real(stft).pow(2).sum(-1)
    log = (mel_filters(wav.device, n_mels) @ power).clamp(min=1e-10).log10()  # [B, n_mels, M]
    valid = torch.arange(m, device=wav.device)[None, None] < frames.to(wav.device)[:, None, None]
    floor = log.masked_fill(~valid, float("-inf")).amax(dim=(1, 2), keepdim=True) - 8.0
    return ((torch.maximum(log, floor) + 4.0) / 4.0).masked_fill(~valid, 0.0)
