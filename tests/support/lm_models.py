"""A tiny random audio LM over a weight-free codec, for tests of its inference and samples."""

from __future__ import annotations

import torch

from audiolm.backbones.mamba import MambaBackbone
from audiolm.codecs.mulaw import MuLawCodec
from audiolm.generation.sampling import Sampler
from audiolm.patterns import DelayPattern
from audiolm.tasks.lm.model import AudioLM


def tiny_lm() -> AudioLM:
    torch.manual_seed(0)
    codec = MuLawCodec(bits=4, sample_rate=400)  # Q=1, K=16, 400 frames a second
    return AudioLM(MambaBackbone(hidden_size=32, num_layers=1), DelayPattern, codec, Sampler(temperature=1.0))
