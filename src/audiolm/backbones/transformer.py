"""A plain GPT-2 style transformer over transformers' ``GPT2Model``: learned absolute positions,
pre-LayerNorm, GELU MLP, SDPA attention."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import GPT2Config, GPT2Model

from audiolm.backbones.hf import HFAttentionBackbone
from audiolm.backbones.kv import StaticKVCache
from audiolm.errors import ConfigError


class TransformerBackbone(HFAttentionBackbone):
    """GPT-2 blocks (pre-LayerNorm attention and GELU MLP) over inputs plus learned position
    embeddings, then a final LayerNorm.

    Args:
        hidden_size: H, the model width.
        num_layers: number of blocks.
        num_heads: attention heads; ``hidden_size`` must be divisible by it.
        intermediate_size: width of the MLP; ``4 * hidden_size`` if None.
        max_position_embeddings: number of learned positions, the longest sequence it accepts.
        dropout: dropout on embeddings, attention weights and residual branches.
    """

    lora_targets = ("attn.c_attn", "attn.c_proj")

    def __init__(
        self,
        hidden_size: int = 256,
        num_layers: int = 6,
        num_heads: int = 4,
        intermediate_size: int | None = None,
        max_position_embeddings: int = 4096,
        dropout: float = 0.0,
    ):
        config = GPT2Config(
            vocab_size=1,
            n_embd=hidden_size,
            n_layer=num_layers,
            n_head=num_heads,
            n_inner=intermediate_size,
            n_positions=max_position_embeddings,
            embd_pdrop=dropout,
            attn_pdrop=dropout,
            resid_pdrop=dropout,
            attn_implementation="sdpa",
            bos_token_id=None,
            eos_token_id=None,
        )
        super().__init__(GPT2Model(config))
        self.max_length = max_position_embeddings

    def new_cache(self, batch_size: int, max_length: int) -> StaticKVCache:
        """Preallocated keys/values for ``max_length`` positions."""
        cfg, weight = self.model.config, self.model.ln_f.weight
        if max_length > cfg.n_positions:
            raise ConfigError(f"cannot decode {max_length} positions: the model has {cfg.n_positions} learned "
                             f"positions (model.max_position_embeddings)")
        return StaticKVCache(cfg.n_layer, batch_size, cfg.n_head, max_length, cfg.n_embd // cfg.n_head,
                             weight.dtype, weight.device)

    def forward(self, inputs_embeds: torch.Tensor, cache: StaticKVCache | None = None):
        """inputs_embeds: [B, L, H] -> (hidden [B, L, H], cache).

        Without a cache this is transformers' forward (training). With one, the same blocks run
        through a lean loop over the preallocated cache, avoiding per-call overhead that dominates
        a decoding step at batch 1; tests hold it equal to the full forward.
        """
        if cache is None:
            return super().forward(inputs_embeds)
        b, n, h = inputs_embeds.shape
        mask = cache.attention_mask(n)
        x = inputs_embeds + self.model.wpe(cache.positions(n))
        for i, block in enumerate(self.model.h):
            attn = block.attn
            q, k, v = attn.c_attn(block.ln_1(x)).split(h, dim=2)
            q, k, v = (t.view(b, n, attn.num_heads, attn.head_dim).transpose(1, 2) for t in (q, k, v))
            k, v = cache.store(i, k, v)
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
            x = x + attn.c_proj(o.transpose(1, 2).reshape(b, n, h))
            x = x + block.mlp(block.ln_2(x))
        cache.advance(n)
        return self.model.ln_f(x), cache
