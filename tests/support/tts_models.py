"""Tiny random-initialised instances of the real pretrained-model classes TTS evaluation uses, saved the
way users get them: an openai-whisper .pt checkpoint and a transformers x-vector model folder."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch


def tiny_whisper_checkpoint(folder: Path) -> Path:
    import whisper
    from whisper.model import ModelDimensions

    dims = ModelDimensions(
        n_mels=80,
        n_audio_ctx=1500,
        n_audio_state=32,
        n_audio_head=2,
        n_audio_layer=1,
        n_vocab=51865,
        n_text_ctx=64,
        n_text_state=32,
        n_text_head=2,
        n_text_layer=1,
    )
    torch.manual_seed(0)
    path = folder / "whisper-tiny-random.pt"
    torch.save({"dims": asdict(dims), "model_state_dict": whisper.model.Whisper(dims).state_dict()}, path)
    return path


def tiny_xvector_model(folder: Path) -> Path:
    from transformers import Wav2Vec2FeatureExtractor, WavLMConfig, WavLMForXVector

    config = WavLMConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(32, 32),
        conv_stride=(5, 4),
        conv_kernel=(10, 8),
        num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=2,
        tdnn_dim=(32, 32),
        tdnn_kernel=(3, 1),
        tdnn_dilation=(1, 1),
        xvector_output_dim=16,
        num_buckets=16,
        max_bucket_distance=32,
    )
    torch.manual_seed(0)
    path = folder / "xvector-tiny-random"
    WavLMForXVector(config).save_pretrained(path)
    Wav2Vec2FeatureExtractor(sampling_rate=16000).save_pretrained(path)
    return path
