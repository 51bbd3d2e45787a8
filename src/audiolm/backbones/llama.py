"""A Llama decoder over transformers' ``LlamaModel``: RoPE, RMSNorm, SwiGLU MLP, SDPA attention."""

from __future__ import annotations

from transformers import LlamaConfig, LlamaModel

from audiolm.backbones.hf import HFBackbone


class LlamaBackbone(HFBackbone):
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
