"""Reconstruction metrics for codec round trips: SI-SDR and log-mel distance.

Both compare a reference ``ref: [B, T]`` with an estimate ``est: [B, T']`` at one sample rate; the
longer of the two is trimmed, since codecs pad the input to a whole number of frames.
"""

from __future__ import annotations

import math

import torch
import torchaudio.transforms as T

EPS = 1e-8


def _aligned(ref: torch.Tensor, est: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    n = min(ref.shape[-1], est.shape[-1])
    return ref[..., :n].float(), est[..., :n].float()


def si_sdr(ref: torch.Tensor, est: torch.Tensor) -> torch.Tensor:
    """Scale-invariant signal-to-distortion ratio in dB (Le Roux et al., 2019): ref, est [B, T] -> [B].

    Both signals are made zero-mean; ``est`` is projected onto ``ref`` and the projection's energy
    is compared with the residual's. Higher is better; a perfect copy at any gain is +inf.
    """
    ref, est = _aligned(ref, est)
    ref = ref - ref.mean(-1, keepdim=True)
    est = est - est.mean(-1, keepdim=True)
    scale = (est * ref).sum(-1, keepdim=True) / (ref.pow(2).sum(-1, keepdim=True) + EPS)
    target = scale * ref
    return 10 * torch.log10(target.pow(2).sum(-1) / ((est - target).pow(2).sum(-1) + EPS) + EPS)


def log_mel_distance(ref: torch.Tensor, est: torch.Tensor, sample_rate: int, n_mels: int = 80) -> torch.Tensor:
    """Mean absolute difference of natural-log mel spectrograms: ref, est [B, T] -> [B]. Lower is better.

    The window is ~64 ms at any rate (a power of two), hop a quarter of it; magnitudes are floored
    at 1e-5 so silence in both signals counts as equal rather than as a huge log gap.
    """
    ref, est = _aligned(ref, est)
    n_fft = 2 ** math.ceil(math.log2(0.064 * sample_rate))
    mel = T.MelSpectrogram(sample_rate, n_fft=n_fft, hop_length=n_fft // 4, n_mels=n_mels, power=1.0).to(ref.device)
    return (mel(ref).clamp_min(1e-5).log() - mel(est).clamp_min(1e-5).log()).abs().mean(dim=(-2, -1))
