"""EnCodec (Défossez et al., 2022) through transformers' ``EncodecModel``: the 24 kHz mono model.

    wav:   [B, 1, T]  float at 24 kHz
    codes: [B, Q, F]  long in [0, 1024), 75 Hz frames (hop 320), F = ceil(T / 320), Q = n_q <= 32

Levels and bandwidth: a level costs log2(1024) bits x 75 frames/s = 0.75 kbps, so the model's bandwidths 1.5 / 3 /
6 / 12 / 24 kbps are 2 / 4 / 8 / 16 / 32 levels. The levels are residual (each refines the sum of the ones before),
so the first n levels of any encode are the n-level encode, and any n_q from 1 to 32 is valid; the bandwidths
are the ones the model was trained at.

The encoder is causal, so a clip's codes never depend on the samples after it.
"""

from __future__ import annotations

import torch
from transformers import EncodecModel
from transformers.models.encodec.modeling_encodec import EncodecConv1d

from audiolm.codecs.hf import HFCodec
from audiolm.errors import ConfigError


class EncodecCodec(HFCodec):
    """Pretrained EnCodec, frozen, used through its first ``n_q`` levels.

    Args:
        pretrained: hub id (``facebook/encodec_24khz``) or a local folder with its ``config.json`` and
            ``model.safetensors``.
        n_q: levels to use, 1 to 32.
        bandwidth: the same choice in kbps, one of the model's ``target_bandwidths`` (6.0 means n_q = 8). Give
            ``n_q`` or ``bandwidth``; both must agree when both are given.
        local_files_only: never download; a hub id must already be in the local Hugging Face cache.
    """

    model_class = EncodecModel
    hub_id = "facebook/encodec_24khz"

    def __init__(
        self,
        pretrained: str | None = hub_id,
        n_q: int | None = 8,
        bandwidth: float | None = None,
        local_files_only: bool = False,
    ) -> None:
        super().__init__(pretrained, local_files_only, n_q=n_q, bandwidth=bandwidth)

    @property
    def max_levels(self) -> int:
        return int(self.model.config.num_quantizers)

    def _levels_at(self, bandwidth: float) -> int:
        return int(self.model.quantizer.get_num_quantizers_for_bandwidth(bandwidth))

    def _check_model(self) -> None:
        config = self.model.config
        unsupported = {
            "audio_channels": (config.audio_channels, 1),
            "chunk_length_s": (config.chunk_length_s, None),
            "normalize": (config.normalize, False),
            "use_causal_conv": (config.use_causal_conv, True),
        }
        wrong = {k: got for k, (got, want) in unsupported.items() if got != want}
        if wrong:
            # The 48 kHz model is stereo, normalises the loudness of each chunk and encodes overlapping chunks;
            # none of that survives the token store's zero-padded batches.
            raise ConfigError(
                f"EncodecCodec reads the causal mono unchunked model ({self.hub_id}); this one has "
                f"{wrong}, which it does not support"
            )

    def _levels(self, n_q: int | None = None, bandwidth: float | None = None) -> int:
        config = self.model.config
        if bandwidth is not None:
            bandwidths = [float(b) for b in config.target_bandwidths]
            if float(bandwidth) not in bandwidths:
                raise ConfigError(
                    f"codec.bandwidth={bandwidth} is not one this EnCodec was trained at: {bandwidths} "
                    f"kbps (or give codec.n_q, 1 to {self.max_levels}, and codec.bandwidth=null)"
                )
            at_bandwidth = self._levels_at(float(bandwidth))
            if n_q is not None and n_q != at_bandwidth:
                raise ConfigError(
                    f"codec.bandwidth={bandwidth} kbps means n_q={at_bandwidth}, but codec.n_q={n_q}; "
                    f"set only one of them (the other null)"
                )
            n_q = at_bandwidth
        if n_q is None:
            raise ConfigError("EncodecCodec needs codec.n_q (levels) or codec.bandwidth (kbps); both are null")
        return super()._levels(n_q)

    @property
    def bandwidth(self) -> float:
        """kbps of the levels in use (n_q x log2(codebook_size) x frame rate)."""
        bits = self.codebook_size.bit_length() - 1
        return self.n_codebooks * bits * self.model.config.frame_rate / 1000

    def _randomize_codebooks(self) -> None:
        # A random encoder's latents sit in a small region that N(0, 1) draws miss (every frame would get one
        # code): take each level's entries from the residuals of noise latents, as EnCodec's k-means starts.
        residual = self.model.encoder(torch.randn(1, 1, 64 * self.hop_length))[0].T  # [64 frames, D]
        for layer in self.model.quantizer.layers:
            picks = residual[torch.randint(len(residual), (self.codebook_size,))]
            layer.codebook.embed.copy_(picks + 0.1 * residual.std() * torch.randn_like(picks))
            residual = residual - layer.codebook.decode(layer.codebook.encode(residual))

    def _min_frames(self) -> int:
        # The causal convolutions pad on the left by reflection, which reads zeros instead of the signal when a
        # layer's input is no longer than its padding; encode at least enough frames that none is.
        needed, stride = 1, 1
        for conv in (m for m in self.model.encoder.modules() if isinstance(m, EncodecConv1d)):
            needed = max(needed, int(conv.padding_total) * stride // self.hop_length + 1)
            stride *= conv.conv.stride[0]
        return needed

    def _hop_length(self) -> int:
        return int(self.model.config.hop_length)

    def _encode_padded(self, wav: torch.Tensor) -> torch.Tensor:
        # EncodecModel.encode takes only trained bandwidths: use the smallest that covers n_q and keep n_q levels.
        bandwidth = min(b for b in self.model.config.target_bandwidths if self._levels_at(b) >= self.n_codebooks)
        codes = self.model.encode(wav, bandwidth=bandwidth, return_dict=True).audio_codes  # [1 chunk, B, Q, F]
        return codes[0, :, : self.n_codebooks]

    def _decode_levels(self, codes: torch.Tensor) -> torch.Tensor:
        return self.model.decode(codes[None], [None], return_dict=True).audio_values
