"""The one interface every sequence backbone implements.

A backbone maps embeddings to hidden states and knows nothing about audio:

    inputs_embeds: [B, L, H]  ->  hidden: [B, L, H]

Decoding goes through a cache (recurrent state for SSMs, keys/values for attention) made by
``new_cache``. Passing a cache means: continue from the state it holds, update it in place, and
return it. The prefix is never recomputed.

``forward`` is causal: position ``i`` sees positions ``<= i``. Backbones that can also let every
position see every other (attention) set ``bidirectional`` and implement ``forward_bidirectional``
(every real position) and ``forward_masked`` (any [B, L, L] attention pattern); non-autoregressive
passes (the TTS NAR levels, parallel TTS demasking) use them. Recurrent backbones scan one way only.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch
from torch import nn


class Backbone(nn.Module, ABC):
    hidden_size: int
    #: the longest sequence the backbone accepts (learned positions); None when there is no hard limit
    max_length: int | None = None
    #: True when the backbone also has ``forward_bidirectional(inputs_embeds, padding_mask) -> hidden``
    bidirectional: bool = False
    #: module names LoRA adapts when ``task.lora.target_modules`` is null (attention / mixer projections)
    lora_targets: tuple[str, ...] = ()
    #: modules whose weights fused CUDA kernels read directly (bypassing their forward, and so LoRA)
    kernel_read_weights: tuple[str, ...] = ()

    @abstractmethod
    def forward(self, inputs_embeds: torch.Tensor, cache: Any | None = None) -> tuple[torch.Tensor, Any | None]:
        """inputs_embeds: [B, L, H] -> (hidden [B, L, H], cache or None)."""

    @abstractmethod
    def new_cache(self, batch_size: int, max_length: int) -> Any:
        """An empty cache for decoding up to ``max_length`` positions of ``batch_size`` sequences."""
