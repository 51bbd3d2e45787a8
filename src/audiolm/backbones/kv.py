"""A preallocated key/value cache for the attention backbones' decoding path.

transformers' ``DynamicCache`` concatenates every new key onto the old ones, so a step at
position 1,500 copies 1,500 positions per layer; here keys and values are written in place into
buffers sized once for the whole decode. Each layer keeps its keys and values in one buffer,
keys in the first ``kv_heads`` rows and values in the next, so a step stores both with one copy:

    buffers[layer]: [B, 2 * kv_heads, max_length, head_dim]

A step still reads every key and value held so far (attention must), so its time grows with the
position: at 1,500 positions the 6-layer benchmark models read about as many bytes of keys and
values as of weights.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


class StaticKVCache:
    def __init__(
        self,
        n_layers: int,
        batch_size: int,
        kv_heads: int,
        max_length: int,
        head_dim: int,
        dtype: torch.dtype,
        device: torch.device,
        weights: Any = None,
    ):
        # never read past ``length``, so the buffers need no initialisation
        shape = (batch_size, 2 * kv_heads, max_length, head_dim)
        self.buffers = [torch.empty(shape, dtype=dtype, device=device) for _ in range(n_layers)]
        self.keys = [buffer[:, :kv_heads] for buffer in self.buffers]  # views, each [B, kv_heads, max_length, D]
        self.values = [buffer[:, kv_heads:] for buffer in self.buffers]
        self.kv_heads = kv_heads
        self.max_length = max_length
        self.length = 0  # positions already held
        #: the backbone's decode-ready weights for its lean path (see ``lean``), built with the cache
        self.weights = weights
        self._workspace: tuple[int, Any] | None = None

    def reserve(self, n_new: int) -> int:
        """Checks that ``n_new`` more positions fit; returns the position of the first."""
        if self.length + n_new > self.max_length:
            raise ValueError(
                f"decoding past the cache: {self.length} + {n_new} positions > max_length "
                f"{self.max_length}; create the cache with a larger max_length"
            )
        return self.length

    def store(self, layer: int, keys_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """keys_values: [B, 2 * kv_heads, L, head_dim] (keys, then values) for the next L positions
        -> (keys, values) so far, [B, kv_heads, length + L, head_dim] each."""
        end = self.length + keys_values.shape[2]
        self.buffers[layer].narrow(2, self.length, keys_values.shape[2]).copy_(keys_values)
        return self.keys[layer].narrow(2, 0, end), self.values[layer].narrow(2, 0, end)

    def workspace(self, n_new: int, build: Callable[[], Any]) -> Any:
        """The backbone's scratch buffers (and views of them) for calls of ``n_new`` positions:
        ``build()`` makes them, once for every run of calls of that size, so a decoding step
        reuses them instead of allocating and re-slicing its intermediates in every layer (about
        5% of a batch-1 attention step)."""
        if self._workspace is None or self._workspace[0] != n_new:
            self._workspace = n_new, build()
        return self._workspace[1]

    def advance(self, n_new: int) -> None:
        """Call once every layer has stored the new positions."""
        self.length += n_new

    def attention_mask(self, n_new: int) -> torch.Tensor | None:
        """[L, length + L] bool: new position i sees every held position and new ones up to i."""
        if n_new == 1:
            return None  # one query sees everything held
        device = self.buffers[0].device
        held = torch.arange(self.length + n_new, device=device)
        return held[None, :] <= (self.length + torch.arange(n_new, device=device))[:, None]
