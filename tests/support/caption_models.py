"""Tiny random captioners built from the real classes (Whisper encoder, Mistral, PEFT), and test audio."""

from __future__ import annotations

import functools
import math

import torch

from audiolm.tasks.caption.llm import tiny_causal_lm
from audiolm.tasks.caption.model import Captioner
from audiolm.tasks.caption.projector import AdaptivePool, Projector, WindowPool
from audiolm.tasks.caption.task import CaptionTask
from audiolm.tasks.caption.whisper_weights import random_whisper_encoder

CAPTIONS = [
    "A loud high pitched square tone pulsing quickly.",
    "Quiet white noise hissing steadily.",
    "A man speaks slowly in a low voice.",
]


OPTIM = {
    "optimizer": functools.partial(torch.optim.Adam, lr=1e-2),
    "weight_decay": 0.0,
    "scheduler": {"warmup_steps": 0, "total_steps": 10, "decay": "constant"},
}


def tiny_model(window: int | None = 4, trim: bool = True, seed: int = 0) -> Captioner:
    """A captioner small enough for unit tests: 1-layer Whisper (width 32), 2-layer Mistral (width 32)."""
    pooling = WindowPool(window) if window else AdaptivePool(6)
    encoder = random_whisper_encoder(n_mels=80, n_state=32, n_head=2, n_layer=1, trim=trim, seed=seed)
    llm = tiny_causal_lm(
        hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=64, vocab_size=400, seed=seed
    )
    return Captioner(encoder, functools.partial(Projector, pooling=pooling), llm)


def tiny_task(
    window: int | None = 4, trim: bool = True, lora_rank: int = 0, train_llm: bool = True, seed: int = 0
) -> CaptionTask:
    """The task around ``tiny_model``: the LLM trains (``train_llm``), takes LoRA adapters, or stays frozen."""
    lora = {"rank": lora_rank, "alpha": 16, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}
    return CaptionTask(tiny_model(window, trim, seed), OPTIM, lora=lora, train_llm=train_llm and not lora_rank)


def tone(seconds: float, freq: float = 440.0, amp: float = 0.3) -> torch.Tensor:
    """A sine at 16 kHz: [T]."""
    t = torch.arange(int(seconds * 16000)) / 16000
    return amp * torch.sin(2 * math.pi * freq * t)


def batch_of(*clips: torch.Tensor, captions: list[str] | None = None) -> dict:
    """A caption batch as the datamodule collates it: wav [B, T] zero-padded, lengths [B]."""
    lengths = torch.tensor([len(c) for c in clips])
    wav = torch.zeros(len(clips), int(lengths.max()))
    for i, c in enumerate(clips):
        wav[i, : len(c)] = c
    captions = captions or CAPTIONS[: len(clips)]
    return {"wav": wav, "lengths": lengths, "captions": captions, "ids": [f"clip{i}" for i in range(len(clips))]}
