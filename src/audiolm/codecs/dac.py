"""DAC, the Descript Audio Codec (Kumar et al., 2023), through transformers' ``DacModel``.

    wav:   [B, 1, T]  float at the model's rate
    codes: [B, Q, F]  long in [0, 1024), F = ceil(T / hop), Q = n_q

    model               rate       hop   frames/s   levels
    descript/dac_16khz  16 kHz     320   50         12
    descript/dac_24khz  24 kHz     320   75         32
    descript/dac_44khz  44.1 kHz   512   86.1       9

The levels are residual, so the first n levels of any encode are the n-level encode. ``pretrained`` may also
be an original descript checkpoint (``.pth``), read without the descript package (see ``dac_descript``).

The encoder is not causal: a frame reads about 0.1 s of audio past its hop. Each clip is zero-padded by that
``lookahead`` (rounded up to whole hops) before encoding, so its codes do not depend on what follows it in a
batch. The released models pad only to a whole hop, so the last ~9 frames of a clip may differ from theirs.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from transformers import DacConfig, DacModel

from audiolm.codecs.dac_descript import load_descript_checkpoint
from audiolm.codecs.errors import CodecUnavailableError
from audiolm.codecs.hf import HFCodec

#: Right reach of DacResidualUnit's kernel-7 convolutions at dilations 1, 3, 9: 3 * (1 + 3 + 9) samples.
RESIDUAL_REACH = 3 * (1 + 3 + 9)


def encoder_reach(config: DacConfig) -> int:
    """Samples past frame f's first sample (f * hop) that frame f's latent depends on.

    Each layer adds its own right reach times the stride before it: DacEncoder's first kernel-7 convolution (3),
    per block three residual units and a kernel-2s, stride-s convolution padded by ceil(s / 2) (2s - 1 -
    ceil(s / 2)), and the final kernel-3 convolution (1).
    """
    reach, stride = 3, 1
    for s in config.downsampling_ratios:
        reach += stride * (RESIDUAL_REACH + 2 * s - 1 - math.ceil(s / 2))
        stride *= s
    return reach + stride * 1


class DacCodec(HFCodec):
    """Pretrained DAC, frozen, used through its first ``n_q`` levels.

    Args:
        pretrained: hub id (``descript/dac_44khz``, ``descript/dac_24khz``, ``descript/dac_16khz``), a local
            folder with ``config.json`` and ``model.safetensors``, or a descript ``.pth`` checkpoint.
        n_q: levels to use, 1 to the model's (9, 32 or 12).
        local_files_only: never download; a hub id must already be in the local Hugging Face cache.
    """

    model_class = DacModel
    hub_id = "descript/dac_44khz"

    def __init__(self, pretrained: str | None = hub_id, n_q: int = 9, local_files_only: bool = False) -> None:
        path = Path(pretrained).expanduser() if pretrained is not None else None
        if path is None or path.suffix != ".pth":
            super().__init__(pretrained, local_files_only, n_q=n_q)
            return
        if not path.is_file():
            raise CodecUnavailableError(
                f"codec.pretrained={path}: no such descript DAC checkpoint file; give the "
                f".pth file of a DAC release, a folder with config.json and "
                f"model.safetensors, or a hub id such as {self.hub_id}"
            )
        self._setup(load_descript_checkpoint(path), {"pretrained": str(path.resolve())}, n_q=n_q)

    @property
    def max_levels(self) -> int:
        return int(self.model.config.n_codebooks)

    def _hop_length(self) -> int:
        return int(self.model.config.hop_length)

    def _lookahead(self) -> int:
        # Rounded up to whole hops, so that every layer of the encoder sees whole frames.
        return -(-encoder_reach(self.model.config) // self.hop_length) * self.hop_length

    def _encode_padded(self, wav: torch.Tensor) -> torch.Tensor:
        return self.model.encode(wav, n_quantizers=self.n_codebooks, return_dict=True).audio_codes

    def _decode_levels(self, codes: torch.Tensor) -> torch.Tensor:
        return self.model.decode(audio_codes=codes, return_dict=True).audio_values[:, None]
