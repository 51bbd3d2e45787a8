"""A plain GPT-2 style transformer over transformers' ``GPT2Model``: learned absolute positions,
pre-LayerNorm, GELU MLP, SDPA attention."""

from __future__ import annotations

from transformers import GPT2Config, GPT2Model

from audiolm.backbones.hf import HFBackbone


class TransformerBackbone(HFBackbone):
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
