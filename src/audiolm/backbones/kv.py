"""A preallocated key/value cache for the attention backbones' decoding path.

transformers' ``DynamicCache`` concatenates every new key onto the old ones, so a step at
position 1,500 copies 1,500 positions per layer; here keys and values are written in place into
buffers sized once for the whole decode, so a step costs the same at every position:

    keys, values: [layers, B, kv_heads, max_length, head_dim]
"""

from __future__ import annotations

import torch


class StaticKVCache:
    def __init__(self, n_layers: int, batch_size: int, kv_heads: int, max_length: int, head_dim: int,
                 dtype: torch.dtype, device: torch.device):
        shape = (n_layers, batch_size, kv_heads, max_length, head_dim)
        self.keys = torch.zeros(shape, dtype=dtype, device=device)
        self.values = torch.zeros(shape, dtype=dtype, device=device)
        self.max_length = max_length
        self.length = 0  # positions already held

    def positions(self, n_new: int) -> torch.Tensor:
        """Absolute positions of the next ``n_new`` inputs; checks they fit."""
        if self.length + n_new > self.max_length:
            raise ValueError(f"decoding past the cache: {self.length} + {n_new} positions > max_length "
                             f"{self.max_length}; create the cache with a larger max_length")
        return torch.arange(self.length, self.length + n_new, device=self.keys.device)

    def store(self, layer: int, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """keys, values: [B, kv_heads, L, head_dim] for the next L positions -> every key/value so far."""
        end = self.length + keys.shape[2]
        self.keys[layer, :, :, self.length : end] = keys
        self.values[layer, :, :, self.length : end] = values
        return self.keys[layer, :, :, :end], self.values[layer, :, :, :end]

    def advance(self, n_new: int) -> None:
        """Call once every layer has stored the new positions."""
        self.length += n_new

    def attention_mask(self, n_new: int) -> torch.Tensor | None:
        """[L, length + L] bool: new position i sees every held position and new ones up to i."""
        if n_new == 1:
            return None  # one query sees everything held
        held = torch.arange(self.length + n_new, device=self.keys.device)
        return held[None, :] <= (self.length + torch.arange(n_new, device=self.keys.device))[:, None]
