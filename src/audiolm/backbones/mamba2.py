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

from audiolm.backbones.hf import HFBackbone, route_kernels_by_device
from audiolm.backbones.lean import (
    SSMStepCache,
    add_projection,
    bias,
    conv_step,
    conv_weights,
    dense,
    norm_eps,
    project,
    rms_norm,
    rms_normalize,
)

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

    # mamba-ssm's fused training kernels read the other projections' weights directly, which would
    # skip their adapters on CUDA; in_proj is called as a module on every path
    lora_targets = ("in_proj",)
    kernel_read_weights = ("x_proj", "dt_proj", "out_proj")

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

    def new_cache(self, batch_size: int, max_length: int) -> SSMStepCache:
        """Conv and SSM states are allocated by the first forward (the arguments are not needed); the
        cache also holds each layer's weights ready for ``_step`` (see ``lean``)."""
        return SSMStepCache(self.model.config, [_step_weights(block) for block in self.model.layers], self.model.norm_f)

    def forward(self, inputs_embeds: torch.Tensor, cache: SSMStepCache | None = None):
        """inputs_embeds: [B, L, H] -> (hidden [B, L, H], cache). One position on a filled cache goes
        through ``_step``: at batch 1 transformers' mixer call overhead is most of a decoding step."""
        if cache is None or inputs_embeds.shape[1] != 1 or not cache.has_previous_state():
            return super().forward(inputs_embeds, cache)
        return self._step(inputs_embeds[:, 0], cache)[:, None], cache

    def _step(self, x: torch.Tensor, cache: SSMStepCache) -> torch.Tensor:
        """x: [B, H] -> [B, H]; updates each layer's conv state [B, C, K] and SSM state
        [B, heads, head_dim, N] in place, as transformers' single-step path does."""
        m = self.model.layers[0].mixer
        b, g, n = x.shape[0], m.n_groups, m.ssm_state_size
        per_group = m.num_heads // g  # each group's B and C serve this many consecutive heads
        for i, weights in enumerate(cache.step_weights):
            w_in, eps, b_in, split, conv_params, dt_bias, neg_a, d, eps_gated, w_out, b_out = weights
            conv, ssm = cache.get_conv_state(i), cache.get_recurrent_state(i)
            gate, xbc, dt = project(rms_normalize(x, eps), w_in, b_in).split(split, dim=-1)
            xs, bs, cs = F.silu(conv_step(conv, xbc, *conv_params)).split([m.intermediate_size, g * n, g * n], -1)
            dt = F.softplus(dt + dt_bias)  # [B, heads]
            xs = xs.view(b, g, per_group, m.head_dim)
            state = ssm.view(b, g, per_group, m.head_dim, n)
            state.mul_((dt * neg_a).exp_().view(b, g, per_group, 1, 1))
            state.addcmul_((dt.view(b, g, per_group, 1) * xs)[..., None], bs.view(b, g, 1, 1, n))
            y = torch.matmul(state, cs.view(b, g, 1, n, 1))[..., 0]  # [B, groups, heads per group, head_dim]
            y = torch.addcmul(y, d, xs).view(b, -1).mul_(F.silu(gate))
            # the gated RMSNorm normalises each group of channels; its weight is folded into out_proj
            y = y.view(b, g, -1)
            x = add_projection(x, rms_normalize(y, eps_gated).view(b, -1), w_out, b_out)
        return rms_norm(x, *cache.final_norm)


def _step_weights(block) -> tuple:
    """One Mamba-2 block's weights for ``Mamba2Backbone._step``: in_proj as [in, out] with the
    block's RMSNorm folded in, the conv, dt_bias, -exp(A_log) and D per head, and
    out_proj with the gated norm's weight folded in. The activation is silu, as configured."""
    m = block.mixer
    split = [m.intermediate_size, m.conv_dim, m.num_heads]
    per_group = m.num_heads // m.n_groups
    return (
        dense(m.in_proj, block.norm),
        norm_eps(block.norm),
        bias(m.in_proj),
        split,
        conv_weights(m.conv1d),
        m.dt_bias.detach(),
        -torch.exp(m.A_log.detach().float()),
        m.D.detach().view(m.n_groups, per_group, 1),
        norm_eps(m.norm),
        dense(m.out_proj, m.norm),
        bias(m.out_proj),
    )
