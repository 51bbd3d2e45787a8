"""Mimi (Kyutai, 2024; the codec of Moshi) through transformers' ``MimiModel``.

    wav:   [B, 1, T]  float at 24 kHz
    codes: [B, Q, F]  long in [0, 2048), 12.5 Hz frames (hop 1920), F = ceil(T / 1920), Q = n_q <= 32

Level 0 is semantic (distilled from WavLM, its own quantizer); levels 1+ are an acoustic residual quantizer of the
same latent, so the first n levels of any encode are the n-level encode. ``semantic_levels`` says how many lead.
Moshi models the first 8 levels.

The encoder (convolutions and transformer) is causal, so a clip's codes never depend on the samples after it.
"""

from __future__ import annotations

import math

import torch
from transformers import MimiModel
from transformers.models.mimi.modeling_mimi import MimiEuclideanCodebook

from audiolm.codecs.hf import HFCodec
from audiolm.errors import ConfigError


class MimiCodec(HFCodec):
    """Pretrained Mimi, frozen, used through its first ``n_q`` levels.

    Args:
        pretrained: hub id (``kyutai/mimi``) or a local folder with its ``config.json`` and ``model.safetensors``.
        n_q: levels to use, 1 to 32.
        local_files_only: never download; a hub id must already be in the local Hugging Face cache.
    """

    model_class = MimiModel
    hub_id = "kyutai/mimi"

    def __init__(self, pretrained: str | None = hub_id, n_q: int = 8, local_files_only: bool = False) -> None:
        super().__init__(pretrained, local_files_only, n_q=n_q)

    @property
    def semantic_levels(self) -> int:
        return min(int(self.model.config.num_semantic_quantizers), self.n_codebooks)

    @property
    def max_levels(self) -> int:
        return int(self.model.config.num_quantizers)

    def _check_model(self) -> None:
        config = self.model.config
        if not config.use_causal_conv or config.audio_channels != 1 or self.model.encoder is None:
            raise ConfigError(
                f"MimiCodec reads causal mono Mimi models with an encoder ({self.hub_id}); this one "
                f"has use_causal_conv={config.use_causal_conv}, audio_channels={config.audio_channels}"
                f", encoder={'no' if self.model.encoder is None else 'yes'}"
            )

    def _codebooks(self) -> list[MimiEuclideanCodebook]:
        return [m for m in self.model.modules() if isinstance(m, MimiEuclideanCodebook)]

    def _randomize_codebooks(self) -> None:
        for codebook in self._codebooks():
            codebook.embed_sum.normal_()
            codebook._embed = None

    def _apply(self, fn, *args, **kwargs):
        # MimiEuclideanCodebook caches its table (embed_sum / cluster_usage) outside its buffers, so .to(device)
        # would leave the cache behind on the old device: drop it, to be rebuilt from the moved buffers.
        out = super()._apply(fn, *args, **kwargs)
        for codebook in self._codebooks():
            codebook._embed = None
        return out

    def _hop_length(self) -> int:
        downsample = self.model.encoder.downsample
        return math.prod(self.model.config.upsampling_ratios) * (downsample.conv.stride[0] if downsample else 1)

    def _encode_padded(self, wav: torch.Tensor) -> torch.Tensor:
        return self.model.encode(wav, num_quantizers=self.n_codebooks, return_dict=True).audio_codes

    def _decode_levels(self, codes: torch.Tensor) -> torch.Tensor:
        return self.model.decode(codes, return_dict=True).audio_values
