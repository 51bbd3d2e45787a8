"""Tiny random-initialised instances of the pretrained codecs' real classes (EnCodec, DAC, Mimi through
transformers; SpeechTokenizer), and noise batches to feed them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import DacConfig, EncodecConfig, MimiConfig

from audiolm.codecs.dac import DacCodec
from audiolm.codecs.encodec import EncodecCodec
from audiolm.codecs.mimi import MimiCodec
from audiolm.codecs.speechtokenizer import SpeechTokenizerCodec

HF_KINDS = ["encodec", "dac", "mimi"]
KINDS = [*HF_KINDS, "speechtokenizer"]
LEVELS = {"encodec": 4, "dac": 4, "mimi": 4, "speechtokenizer": 4}
CLASSES = {"encodec": EncodecCodec, "dac": DacCodec, "mimi": MimiCodec}

# Tiny versions of the real architectures: a few thousand parameters, hops of 6 to 16 samples.
TINY_CONFIGS = {
    # 1000 frames/s x log2(64) bits = 6 kbps per level: bandwidths 6 / 12 / 24 kbps are 1 / 2 / 4 levels.
    "encodec": lambda **kw: EncodecConfig(
        target_bandwidths=[6.0, 12.0, 24.0],
        sampling_rate=8000,
        hidden_size=16,
        num_filters=4,
        upsampling_ratios=[4, 2],
        num_lstm_layers=1,
        codebook_size=64,
        kernel_size=3,
        last_kernel_size=3,
        **kw,
    ),
    # An odd stride (3) as in dac_24khz's 5: its transposed convolution decodes a few samples short.
    "dac": lambda: DacConfig(
        encoder_hidden_size=4,
        downsampling_ratios=[2, 3],
        decoder_hidden_size=16,
        n_codebooks=4,
        codebook_size=32,
        codebook_dim=4,
        sampling_rate=6000,
    ),
    "mimi": lambda: MimiConfig(
        sampling_rate=8000,
        hidden_size=16,
        num_filters=4,
        upsampling_ratios=[4, 2],
        codebook_size=32,
        codebook_dim=8,
        num_quantizers=4,
        vector_quantization_hidden_dimension=8,
        num_hidden_layers=1,
        intermediate_size=32,
        num_attention_heads=2,
        num_key_value_heads=2,
        upsample_groups=16,
        sliding_window=16,
        max_position_embeddings=256,
        kernel_size=3,
        last_kernel_size=3,
    ),
}
TINY_SPEECHTOKENIZER = {
    "n_filters": 4,
    "dimension": 16,
    "strides": [4, 2],
    "lstm_layers": 1,
    "bidirectional": True,
    "dilation_base": 2,
    "residual_kernel_size": 3,
    "n_residual_layers": 1,
    "activation": "ELU",
    "sample_rate": 8000,
    "n_q": 4,
    "semantic_dimension": 8,
    "codebook_size": 32,
}


def write_speechtokenizer(folder) -> None:
    """config.json + SpeechTokenizer.pt of a random tiny SpeechTokenizer, as the pretrained folder holds them."""
    from speechtokenizer import SpeechTokenizer

    torch.manual_seed(0)
    model = SpeechTokenizer(TINY_SPEECHTOKENIZER)
    # Its codebooks start at zero for k-means on the first batch; start them from noise latents the same way.
    with torch.no_grad():
        residual = model.encoder(torch.randn(1, 1, 32 * 8))[0].T  # [32 frames, dimension]
        for layer in model.quantizer.vq.layers:
            layer._codebook.embed.copy_(residual)
            residual = residual - layer.decode(layer.encode(residual.T[None]))[0].T
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(TINY_SPEECHTOKENIZER))
    torch.save(model.state_dict(), folder / "SpeechTokenizer.pt")


def codec_factory(base: Path):
    """make(kind, n_q=None) -> a tiny codec of that kind (cached, files under ``base``); n_q=None: every level."""
    built: dict = {}

    def build(kind: str, n_q: int | None = None):
        n_q = n_q or LEVELS[kind]
        if (kind, n_q) not in built:
            if kind == "speechtokenizer":
                pytest.importorskip("speechtokenizer")
                folder = base / "speechtokenizer"
                if not folder.exists():
                    write_speechtokenizer(folder)
                built[kind, n_q] = SpeechTokenizerCodec(str(folder), n_q=n_q)
            else:
                built[kind, n_q] = CLASSES[kind].from_config(TINY_CONFIGS[kind](), n_q=n_q)
        return built[kind, n_q]

    return build


def noise_batch(lengths: list[int], seed: int = 0) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Clips [1, T_b] of noise and the zero-padded batch [B, 1, max T_b] the token store would build."""
    g = torch.Generator().manual_seed(seed)
    clips = [0.3 * torch.randn(1, n, generator=g) for n in lengths]
    batch = torch.zeros(len(clips), 1, max(lengths))
    for b, clip in enumerate(clips):
        batch[b, :, : clip.shape[-1]] = clip
    return clips, batch
