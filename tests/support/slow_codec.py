"""A mu-law codec that takes its time, so a test can kill a tokenising process in the middle."""

from __future__ import annotations

import time

import torch

from audiolm.codecs.mulaw import MuLawCodec


class SlowMuLawCodec(MuLawCodec):
    """Mu-law codes (same config, same store key), but every encode call sleeps ``delay`` seconds."""

    def __init__(self, delay: float = 0.05, **kwargs):
        super().__init__(**kwargs)
        self.delay = delay

    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        time.sleep(self.delay)
        return super().encode(wav)
