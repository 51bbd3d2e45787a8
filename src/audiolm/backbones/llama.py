"""A Llama decoder over transformers' ``LlamaModel``: RoPE, RMSNorm, SwiGLU MLP, SDPA attention."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import LlamaConfig, LlamaModel
from transformers.models.llama.modeling_llama import rotate_half

from audiolm.backbones.hf import HFAttentionBackbone, rms_norm
from audiolm.backbones.kv import StaticKVCache
from audiolm.backbones.lora import effective_weight


class LlamaBackbone(HFAttentionBackbone):
    """Llama decoder layers (pre-RMSNorm attention with rotary positions, SwiGLU MLP), then a final RMSNorm.

    Args:
        hidden_size: H, the model width.
        num_layers: number of decoder layers.
        num_heads: attention heads; ``hidden_size`` must be divisible by it.
        intermediate_size: width of the SwiGLU MLP.
        max_position_embeddings: longest sequence the rotary embedding is configured for.
        num_kv_heads: key/value heads (grouped-query attention); ``num_heads`` if None.
        rope_theta: base of the rotary frequencies.
    """

    lora_targets = ("q_proj", "k_proj", "v_proj", "o_proj")

    def __init__(
        self,
        hidden_size: int = 256,
        num_layers: int = 6,
        num_heads: int = 4,
        intermediate_size: int = 704,
        max_position_embeddings: int = 4096,
        num_kv_heads: int | None = None,
        rope_theta: float = 10000.0,
    ):
        config = LlamaConfig(
            vocab_size=1,
            hidden_size=hidden_size,
            num_hidden_layers=num_layers,
            num_attention_heads=num_heads,
            num_key_value_heads=num_kv_heads or num_heads,
            intermediate_size=intermediate_size,
            max_position_embeddings=max_position_embeddings,
            rope_parameters={"rope_type": "default", "rope_theta": rope_theta},
            attn_implementation="sdpa",
            pad_token_id=None,
            bos_token_id=None,
            eos_token_id=None,
        )
        super().__init__(LlamaModel(config))

    def new_cache(self, batch_size: int, max_length: int) -> StaticKVCache:
        """Preallocated keys/values for ``max_length`` positions, the rotary table for them, and each
        layer's q/k/v and gate/up weights concatenated, so a step runs two matmuls where it ran five."""
        cfg, weight = self.model.config, self.model.norm.weight
        cache = StaticKVCache(cfg.num_hidden_layers, batch_size, cfg.num_key_value_heads, max_length,
                              cfg.hidden_size // cfg.num_attention_heads, weight.dtype, weight.device)
        positions = torch.arange(max_length, device=weight.device)[None]
        cos, sin = self.model.rotary_emb(weight[None, None], positions)  # [1, max_length, head_dim]
        cache.rotary = (cos[:, None], sin[:, None])  # broadcast over heads
        cache.fused = [_fused_weights(layer) for layer in self.model.layers]
        return cache

    def forward(self, inputs_embeds: torch.Tensor, cache: StaticKVCache | None = None):
        """inputs_embeds: [B, L, H] -> (hidden [B, L, H], cache).

        Without a cache this is transformers' forward (training). With one, the same layers run
        through a lean loop over the preallocated cache: at batch 1 a decoding step is dominated by
        per-call overhead, which this path avoids; tests hold it equal to the full forward.
        """
        if cache is None:
            return super().forward(inputs_embeds)
        b, n, _ = inputs_embeds.shape
        positions = cache.positions(n)
        cos, sin = (t[:, :, positions] for t in cache.rotary)
        mask = cache.attention_mask(n)
        x = inputs_embeds
        for i, layer in enumerate(self.model.layers):
            attn, (w_qkv, w_gate_up) = layer.self_attn, cache.fused[i]
            qkv = F.linear(rms_norm(x, layer.input_layernorm), w_qkv).view(b, n, -1, attn.head_dim).transpose(1, 2)
            n_q = qkv.shape[1] - 2 * cache.keys.shape[2]
            qk = qkv[:, : n_q + cache.keys.shape[2]]
            qk = qk * cos + rotate_half(qk) * sin  # queries and keys rotated together
            k, v = cache.store(i, qk[:, n_q:], qkv[:, n_q + cache.keys.shape[2] :])
            o = F.scaled_dot_product_attention(qk[:, :n_q], k, v, attn_mask=mask,
                                               enable_gqa=attn.num_key_value_groups > 1)
            x = x + attn.o_proj(o.transpose(1, 2).reshape(b, n, -1))
            gate, up = F.linear(rms_norm(x, layer.post_attention_layernorm), w_gate_up).chunk(2, dim=-1)
            x = x + layer.mlp.down_proj(layer.mlp.act_fn(gate) * up)
        cache.advance(n)
        return rms_norm(x, self.model.norm), cache


def _fused_weights(layer) -> tuple[torch.Tensor, torch.Tensor]:
    """A layer's [q; k; v] and [gate; up] projection weights, stacked (LlamaBackbone builds them bias-free),
    LoRA adapters included."""
    attn, mlp = layer.self_attn, layer.mlp
    w_qkv = torch.cat([effective_weight(attn.q_proj), effective_weight(attn.k_proj), effective_weight(attn.v_proj)])
    return w_qkv.detach(), torch.cat([effective_weight(mlp.gate_proj), effective_weight(mlp.up_proj)]).detach()
