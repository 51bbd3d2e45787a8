"""A plain GPT-2 style transformer over transformers' ``GPT2Model``: learned absolute positions,
pre-LayerNorm, GELU MLP, SDPA attention."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import GPT2Config, GPT2Model

from audiolm.adapters.lora import effective_weight
from audiolm.backbones.hf import HFAttentionBackbone
from audiolm.backbones.kv import StaticKVCache
from audiolm.backbones.lean import add_projection
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
        """Preallocated keys/values for ``max_length`` positions, plus each block's weights for the lean path."""
        cfg, weight = self.model.config, self.model.ln_f.weight
        if max_length > cfg.n_positions:
            raise ConfigError(
                f"cannot decode {max_length} positions: the model has {cfg.n_positions} learned "
                f"positions (model.max_position_embeddings)"
            )
        return StaticKVCache(
            cfg.n_layer,
            batch_size,
            cfg.n_head,
            max_length,
            cfg.n_embd // cfg.n_head,
            weight.dtype,
            weight.device,
            [_step_weights(block) for block in self.model.h],
        )

    def forward(self, inputs_embeds: torch.Tensor, cache: StaticKVCache | None = None):
        """inputs_embeds: [B, L, H] -> (hidden [B, L, H], cache).

        Without a cache this is transformers' forward (training). With one, the same blocks run
        through a lean loop over the preallocated cache (eval mode: no dropout), keeping the
        per-operation overhead that dominates a decoding step at batch 1 low (see ``lean``);
        tests hold it equal to the full forward.
        """
        if cache is None:
            return super().forward(inputs_embeds)
        b, n, h = inputs_embeds.shape
        start, mask = cache.reserve(n), cache.attention_mask(n)
        qkv, q, kv = cache.workspace(n, lambda: self._workspace(b, n))
        eps = self.model.config.layer_norm_epsilon
        x = (inputs_embeds + self.model.wpe.weight[start : start + n]).reshape(b * n, h)
        for i, (ln_1, w_attn, b_attn, w_proj, b_proj, ln_2, w_fc, b_fc, w_out, b_out) in enumerate(cache.weights):
            torch.addmm(b_attn, F.layer_norm(x, (h,), *ln_1, eps), w_attn, out=qkv)
            k, v = cache.store(i, kv)
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
            x = add_projection(x, o.transpose(1, 2).reshape(b * n, h), w_proj, b_proj)
            # GPT-2's gelu_new is the tanh approximation of GELU, here as one fused op
            hidden = F.gelu(torch.addmm(b_fc, F.layer_norm(x, (h,), *ln_2, eps), w_fc), approximate="tanh")
            x = add_projection(x, hidden, w_out, b_out)
        cache.advance(n)
        ln_f = self.model.ln_f
        return F.layer_norm(x, (h,), ln_f.weight, ln_f.bias, eps).view(b, n, h), cache

    def _workspace(self, b: int, n: int) -> tuple[torch.Tensor, ...]:
        """The [q; k; v] projection buffer [B * L, 3 * H] that every block reuses, and its views:
        queries [B, heads, L, head_dim] for attention, keys and values [B, 2 * heads, L, head_dim]
        for the cache."""
        cfg, weight = self.model.config, self.model.ln_f.weight
        qkv = torch.empty(b * n, 3 * cfg.n_embd, dtype=weight.dtype, device=weight.device)
        heads = qkv.view(b, n, 3 * cfg.n_head, cfg.n_embd // cfg.n_head).transpose(1, 2)
        return qkv, heads[:, : cfg.n_head], heads[:, cfg.n_head :]


def _step_weights(block) -> tuple:
    """A block's weights for the lean path: LayerNorm (weight, bias) pairs, and the Conv1D
    projections' weights, already [in, out] (LoRA included), and biases."""
    attn, mlp = block.attn, block.mlp

    def conv1d(layer) -> tuple[torch.Tensor, torch.Tensor]:
        return effective_weight(layer).detach(), layer.bias.detach()

    def norm(layer) -> tuple[torch.Tensor, torch.Tensor]:
        return layer.weight.detach(), layer.bias.detach()

    return (
        norm(block.ln_1),
        *conv1d(attn.c_attn),
        *conv1d(attn.c_proj),
        norm(block.ln_2),
        *conv1d(mlp.c_fc),
        *conv1d(mlp.c_proj),
    )
