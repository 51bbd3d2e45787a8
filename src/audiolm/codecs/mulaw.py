"""Mu-law codec: one 8-bit code per sample, the raw-waveform setting of SaShiMi / Mamba on SC09.

    wav:   [B, 1, T]  float in [-1, 1] (louder samples are clipped)
    codes: [B, 1, T]  long in [0, 2**bits)

The frame rate is the sample rate: every sample is one token, so F == T.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from audiolm.codecs.base import AudioCodec


class MuLawCodec(AudioCodec):
    """Companded scalar quantisation of each sample (continuous mu-law as in WaveNet, mu = 2**bits - 1).

    The formulas match ``torchaudio.functional.mu_law_encoding`` / ``mu_law_decoding`` exactly; the
    only difference is that input outside [-1, 1] is clipped first, so codes never leave the range.
    """

    n_codebooks = 1

    def __init__(self, sample_rate: int = 16000, bits: int = 8) -> None:
        super().__init__()
        if not 1 <= bits <= 16:
            raise ValueError(f"bits must be in [1, 16], got {bits}")
        self.sample_rate = int(sample_rate)
        self.bits = int(bits)
        self.frame_rate = float(sample_rate)
        self.codebook_size = 2**bits
        self.mu = float(self.codebook_size - 1)

    def _encode(self, wav: torch.Tensor) -> torch.Tensor:
        """wav: [B, 1, T] float -> codes: [B, 1, T] long."""
        x = wav.float().clamp(-1.0, 1.0)
        companded = torch.sign(x) * torch.log1p(self.mu * x.abs()) / math.log1p(self.mu)  # [-1, 1]
        # Round half up onto the integer grid 0..mu, as torchaudio does (+0.5 then truncate).
        return ((companded + 1) / 2 * self.mu + 0.5).long()

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes: [B, 1, T] long -> wav: [B, 1, T] float in [-1, 1]."""
        companded = codes.float() / self.mu * 2 - 1
        return torch.sign(companded) * torch.expm1(companded.abs() * math.log1p(self.mu)) / self.mu

    def config_dict(self) -> dict[str, Any]:
        return {"codec": type(self).__name__, "sample_rate": self.sample_rate, "bits": self.bits}

    def num_frames(self, num_samples: int) -> int:
        return num_samples
