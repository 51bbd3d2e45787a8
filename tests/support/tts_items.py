"""Random TTS items and batches (Q levels of K codes) for the tests of both TTS models."""

from __future__ import annotations

import torch

from audiolm.data.tts import TTSItems

Q, K = 3, 16


def item(n_phonemes: int, n_prompt: int, n_frames: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "phonemes": torch.randint(1, 40, (n_phonemes,), generator=g),
        "prompt": torch.randint(0, K, (Q, n_prompt), generator=g),
        "codes": torch.randint(0, K, (Q, n_frames), generator=g),
    }


def batch(*items):
    return TTSItems.collate(list(items))
