"""Mamba-2 over transformers' ``Mamba2Model``.

Its PyTorch path (the chunked SSD scan) is already vectorised, and it continues a filled cache
over several positions correctly, so training, prefill and multi-position steps use it as is;
single decoding steps run a lean ``_step`` over the same weights and cache. Importing this module installs the
device dispatch for its kernel hooks (see ``route_kernels_by_device``) so that CPU runs never
reach mamba-ssm's CUDA kernels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import Mamba2Config, Mamba2Model
from transformers.models.mamba2 import modeling_mamba2

from audiolm.backbones.hf import HFBackbone, SSMDecodeCache, causal_conv_step, rms_norm, route_kernels_by_device

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

    lora_targets = ("in_proj", "out_proj")

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

    def new_cache(self, batch_size: int, max_length: int) -> SSMDecodeCache:
        """Conv and SSM states are allocated by the first forward; the arguments are not needed."""
        return SSMDecodeCache(self.model.config)

    def forward(self, inputs_embeds: torch.Tensor, cache: SSMDecodeCache | None = None):
        """inputs_embeds: [B, L, H] -> (hidden [B, L, H], cache). One position on a filled cache goes
        through ``_step``: at batch 1 transformers' mixer call overhead is most of a decoding step."""
        if cache is None or inputs_embeds.shape[1] != 1 or not cache.has_previous_state():
            return super().forward(inputs_embeds, cache)
        return self._step(inputs_embeds[:, 0], cache)[:, None], cache

    def _step(self, x: torch.Tensor, cache: SSMDecodeCache) -> torch.Tensor:
        """x: [B, H] -> [B, H]; updates each layer's conv state [B, C, K] and SSM state
        [B, heads, head_dim, N] in place, as transformers' single-step path does."""
        neg_a = cache.decay_rates(self.model.layers)  # [heads] per layer
        for i, block in enumerate(self.model.layers):
            m = block.mixer
            conv, ssm = cache.get_conv_state(i), cache.get_recurrent_state(i)
            gate, xbc, dt = m.in_proj(rms_norm(x, block.norm)).split([m.intermediate_size, m.conv_dim, m.num_heads], -1)
            xbc = causal_conv_step(conv, xbc, m.conv1d)
            group = m.n_groups * m.ssm_state_size
            xs, b, c = m.act(xbc).split([m.intermediate_size, group, group], -1)
            # each group's B and C serve num_heads / n_groups consecutive heads
            per_group = m.num_heads // m.n_groups
            b = b.view(-1, m.n_groups, 1, m.ssm_state_size).repeat_interleave(per_group, dim=1)  # [B, heads, 1, N]
            c = c.view(-1, m.n_groups, m.ssm_state_size, 1).repeat_interleave(per_group, dim=1)  # [B, heads, N, 1]
            dt = F.softplus(dt + m.dt_bias)  # [B, heads]
            xs = xs.view(-1, m.num_heads, m.head_dim)
            ssm.mul_(torch.exp(dt * neg_a[i])[:, :, None, None]).add_((dt[:, :, None] * xs)[..., None] * b)
            y = (ssm @ c)[..., 0] + m.D[:, None] * xs  # [B, heads, head_dim]
            x = x + m.out_proj(m.norm(y.reshape(x.shape[0], -1), gate))
        return rms_norm(x, self.model.norm_f)
