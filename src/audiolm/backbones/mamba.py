"""Mamba-1 (the architecture of the MarcRandBot seed) over transformers' ``MambaModel``.

Parameter names are those of ``MambaModel`` under ``model.`` (less the input embedding table,
see ``HFBackbone``), so the same weights load on CPU and CUDA.

Importing this module installs the device dispatch for transformers' Mamba kernel hooks (see
``route_kernels_by_device``). The selective scan's PyTorch path becomes audiolm's chunked
``selective_scan``: transformers' own is a Python loop over every position whose backward grows
quadratically with the length, over 100x slower to train at length 512 on CPU (see
benchmarks/results/train_throughput.md). On CUDA with mamba-ssm installed the fused kernels are
used as before.
"""

from __future__ import annotations

import torch
from transformers import MambaConfig, MambaModel
from transformers.cache_utils import Cache
from transformers.models.mamba import modeling_mamba

from audiolm.backbones.hf import HFBackbone, route_kernels_by_device
from audiolm.backbones.scan import selective_scan

# transformers binds these hooks to the CUDA kernels whenever mamba-ssm / causal-conv1d import,
# whatever the device: send CPU tensors to PyTorch, and the scan to audiolm's chunked one.
route_kernels_by_device(
    modeling_mamba,
    {
        "mamba_inner_fn": "mamba_ssm",
        "mamba_selective_scan": "mamba_ssm",
        "mamba_selective_state_update": "mamba_ssm",
        "causal_conv1d_fn": "causal_conv1d",
        "causal_conv1d_update": "causal_conv1d",
    },
    torch_paths={"mamba_selective_scan": selective_scan},
)


class MambaBackbone(HFBackbone):
    """Mamba-1 blocks (RMSNorm -> selective SSM mixer, residual), then a final RMSNorm.

    Args:
        hidden_size: H, the model width.
        num_layers: number of Mamba blocks.
        state_size: N, SSM state size per channel.
        expand: the mixer's width is ``expand * hidden_size``.
        conv_kernel: width of the causal depthwise convolution.
    """

    cache_argument = "cache_params"

    def __init__(
        self, hidden_size: int = 256, num_layers: int = 6, state_size: int = 16, expand: int = 2, conv_kernel: int = 4
    ):
        config = MambaConfig(
            vocab_size=1,
            hidden_size=hidden_size,
            num_hidden_layers=num_layers,
            state_size=state_size,
            expand=expand,
            conv_kernel=conv_kernel,
            pad_token_id=None,
            bos_token_id=None,
            eos_token_id=None,
        )
        super().__init__(MambaModel(config))

    def forward(self, inputs_embeds: torch.Tensor, cache: Cache | None = None) -> tuple[torch.Tensor, Cache | None]:
        """inputs_embeds: [B, L, H] -> (hidden [B, L, H], cache).

        transformers' Mamba-1 mixer can prefill an empty cache or advance a filled one by a
        single position; given several positions and a filled cache it would restart the scan
        from a zero state. Those positions are therefore fed one at a time.
        """
        if cache is None or inputs_embeds.shape[1] == 1 or not cache.has_previous_state():
            return super().forward(inputs_embeds, cache)
        hidden = [HFBackbone.forward(self, step, cache)[0] for step in inputs_embeds.split(1, dim=1)]
        return torch.cat(hidden, dim=1), cache
