"""Mamba-2 over transformers' ``Mamba2Model``.

Its PyTorch path (the chunked SSD scan) is already vectorised, and it continues a filled cache
over several positions correctly, so it is used as is. Importing this module installs the
device dispatch for its kernel hooks (see ``route_kernels_by_device``) so that CPU runs never
reach mamba-ssm's CUDA kernels.
"""

from __future__ import annotations

from transformers import Mamba2Config, Mamba2Model
from transformers.models.mamba2 import modeling_mamba2

from audiolm.backbones.hf import HFBackbone, route_kernels_by_device

# As for Mamba-1: CPU tensors must not reach the CUDA kernels transformers binds when mamba-ssm imports.
route_kernels_by_device(
    modeling_mamba2,
    {
        "mamba2_split_conv1d_scan_combined": "mamba_ssm",
        "mamba2_chunk_scan": "mamba_ssm",
        "mamba2_selective_state_update": "mamba_ssm",
        "causal_conv1d_fn": "causal_conv1d",
        "causal_conv1d_update": "causal_conv1d",
    },
)


class Mamba2Backbone(HFBackbone):
    """Mamba-2 blocks (RMSNorm -> SSD mixer with gated RMSNorm, residual), then a final RMSNorm.

    The mixer has ``expand * hidden_size / head_dim`` heads, which must be a whole number
    divisible by ``n_groups``.

    Args:
        hidden_size: H, the model width.
        num_layers: number of Mamba-2 blocks.
        state_size: N, SSM state size per head.
        expand: the mixer's width is ``expand * hidden_size``.
        head_dim: channels per head.
        n_groups: groups of heads sharing B and C.
        conv_kernel: width of the causal depthwise convolution.
        chunk_size: positions per chunk of the SSD scan (training and prefill); 32 trains fastest on CPU.
    """

    cache_argument = "cache_params"

    def __init__(
        self,
        hidden_size: int = 256,
        num_layers: int = 6,
        state_size: int = 64,
        expand: int = 2,
        head_dim: int = 64,
        n_groups: int = 1,
        conv_kernel: int = 4,
        chunk_size: int = 32,
    ):
        width = expand * hidden_size
        if width % head_dim or (width // head_dim) % n_groups:
            raise ValueError(
                f"expand * hidden_size = {width} must split into heads of {head_dim} channels, "
                f"a number of heads divisible by n_groups = {n_groups}"
            )
        config = Mamba2Config(
            vocab_size=1,
            hidden_size=hidden_size,
            num_hidden_layers=num_layers,
            state_size=state_size,
            expand=expand,
            num_heads=width // head_dim,
            head_dim=head_dim,
            n_groups=n_groups,
            conv_kernel=conv_kernel,
            chunk_size=chunk_size,
            pad_token_id=None,
            bos_token_id=None,
            eos_token_id=None,
        )
        super().__init__(Mamba2Model(config))
