"""A Llama decoder over transformers' ``LlamaModel``: RoPE, RMSNorm, SwiGLU MLP, SDPA attention."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import LlamaConfig, LlamaModel

from audiolm.backbones.hf import HFAttentionBackbone
from audiolm.backbones.kv import StaticKVCache
from audiolm.backbones.lean import add_projection, dense, norm_eps, project, rms_norm, rms_normalize


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
        """Preallocated keys/values for ``max_length`` positions, plus the lean path's weights: each
        layer's [q; k; v] and [gate; up] projections fused (two matrix products where there were
        five) with their RMSNorms folded in (see ``lean``), and the rotary tables for every position."""
        cfg, weight = self.model.config, self.model.norm.weight
        head_dim = cfg.hidden_size // cfg.num_attention_heads
        positions = torch.arange(max_length, device=weight.device)[None]
        tables = self.model.rotary_emb(weight[None, None], positions)  # cos, sin: [1, max_length, head_dim]
        cos, sin = (t[0, :, None].unflatten(-1, (2, -1)) for t in tables)
        # rotate_half(x) * sin == (x's halves swapped) * sin with its first half negated: x is viewed as
        # [..., 2, head_dim / 2] so that the swap is one flip, and the tables as [max_length, 1, 2, head_dim / 2]
        sin = torch.stack([-sin[..., 0, :], sin[..., 1, :]], dim=-2)
        final_norm = self.model.norm.weight.detach(), norm_eps(self.model.norm)
        weights = ([_step_weights(layer) for layer in self.model.layers], cos, sin, final_norm)
        return StaticKVCache(
            cfg.num_hidden_layers,
            batch_size,
            cfg.num_key_value_heads,
            max_length,
            head_dim,
            weight.dtype,
            weight.device,
            weights,
        )

    def forward(self, inputs_embeds: torch.Tensor, cache: StaticKVCache | None = None):
        """inputs_embeds: [B, L, H] -> (hidden [B, L, H], cache).

        Without a cache this is transformers' forward (training). With one, the same layers run
        through a lean loop over the preallocated cache: at batch 1 a decoding step is dominated by
        per-operation overhead, which this path keeps low (see ``lean``); tests hold it equal to
        the full forward.
        """
        if cache is None:
            return super().forward(inputs_embeds)
        b, n, h = inputs_embeds.shape
        layers, cos, sin, final_norm = cache.weights
        start = cache.reserve(n)
        cos, sin = cos[start : start + n], sin[start : start + n]  # [L, 1, 2, head_dim / 2]
        mask = cache.attention_mask(n)
        qkv, qk, q, kv = cache.workspace(n, lambda: self._workspace(b, n))
        gqa = q.shape[1] != cache.kv_heads
        x = inputs_embeds.reshape(b * n, h)
        for i, (w_qkv, eps_attn, w_o, w_gate_up, eps_mlp, w_down) in enumerate(layers):
            torch.mm(rms_normalize(x, eps_attn), w_qkv, out=qkv)
            rotated = qk.flip(-2)  # queries and keys rotated together, in place
            qk.mul_(cos).addcmul_(rotated, sin)
            k, v = cache.store(i, kv)
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=gqa)
            x = add_projection(x, o.transpose(1, 2).reshape(b * n, -1), w_o)
            gate, up = project(rms_normalize(x, eps_mlp), w_gate_up).chunk(2, dim=-1)
            x = add_projection(x, F.silu(gate).mul_(up), w_down)
        cache.advance(n)
        return rms_norm(x, *final_norm).view(b, n, h), cache

    def _workspace(self, b: int, n: int) -> tuple[torch.Tensor, ...]:
        """The [q; k; v] projection buffer [B * L, heads * head_dim] that every layer reuses, and its
        views: queries and keys as [B, L, heads, 2, head_dim / 2] for the rotation, queries
        [B, q_heads, L, head_dim] for attention, keys and values [B, 2 * kv_heads, L, head_dim] for
        the cache."""
        cfg, weight = self.model.config, self.model.norm.weight
        n_q, n_kv = cfg.num_attention_heads, cfg.num_key_value_heads
        head_dim = cfg.hidden_size // n_q
        qkv = torch.empty(b * n, (n_q + 2 * n_kv) * head_dim, dtype=weight.dtype, device=weight.device)
        heads = qkv.view(b, n, n_q + 2 * n_kv, head_dim)
        qk = heads.unflatten(-1, (2, -1))[:, :, : n_q + n_kv]
        return qkv, qk, heads[:, :, :n_q].transpose(1, 2), heads[:, :, n_q:].transpose(1, 2)


def _step_weights(layer) -> tuple:
    """A layer's weights for the lean path, as [in, out] (LlamaBackbone builds them bias-free, with a
    silu MLP): [q; k; v] with the input RMSNorm folded in, o, [gate; up] with the post-attention
    RMSNorm folded in, down; LoRA adapters included."""
    attn, mlp, norm_attn, norm_mlp = layer.self_attn, layer.mlp, layer.input_layernorm, layer.post_attention_layernorm
    qkv = torch.cat([dense(attn.q_proj, norm_attn), dense(attn.k_proj, norm_attn), dense(attn.v_proj, norm_attn)], 1)
    gate_up = torch.cat([dense(mlp.gate_proj, norm_mlp), dense(mlp.up_proj, norm_mlp)], dim=1)
    return (qkv, norm_eps(norm_attn), dense(attn.o_proj), gate_up, norm_eps(norm_mlp), dense(mlp.down_proj))
