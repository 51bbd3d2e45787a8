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
import torch.nn.functional as F
from transformers import MambaConfig, MambaModel
from transformers.models.mamba import modeling_mamba

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

    # mamba-ssm's fused training kernels read the other projections' weights directly, which would
    # skip their adapters on CUDA; in_proj is called as a module on every path
    lora_targets = ("in_proj",)
    kernel_read_weights = ("x_proj", "dt_proj", "out_proj")

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

    def new_cache(self, batch_size: int, max_length: int) -> SSMStepCache:
        """Conv and SSM states are allocated by the first forward (the arguments are not needed); the
        cache also holds each layer's weights ready for ``_step`` (see ``lean``)."""
        return SSMStepCache(self.model.config, [_step_weights(block) for block in self.model.layers], self.model.norm_f)

    def forward(self, inputs_embeds: torch.Tensor, cache: SSMStepCache | None = None):
        """inputs_embeds: [B, L, H] -> (hidden [B, L, H], cache).

        An empty cache is filled by transformers' forward (the prefill, through the chunked scan).
        A filled one advances one position at a time through ``_step``. transformers' Mamba-1
        mixer could advance it by one position too, but at batch 1 its per-call overhead is most of
        a step; given several positions it would even restart the scan from a zero state.
        """
        if cache is None or not cache.has_previous_state():
            return super().forward(inputs_embeds, cache)
        if inputs_embeds.shape[1] == 1:
            return self._step(inputs_embeds[:, 0], cache)[:, None], cache
        hidden = [self._step(x[:, 0], cache) for x in inputs_embeds.split(1, dim=1)]
        return torch.stack(hidden, dim=1), cache

    def _step(self, x: torch.Tensor, cache: SSMStepCache) -> torch.Tensor:
        """One position, x: [B, H] -> [B, H]; updates each layer's conv state [B, D, K] and SSM
        state [B, D, N] in place, as transformers' own single-step kernels do."""
        for i, weights in enumerate(cache.step_weights):
            w_in, eps, b_in, conv_params, w_x, split, w_dt, b_dt, neg_a, d, w_out, b_out = weights
            conv, ssm = cache.get_conv_state(i), cache.get_recurrent_state(i)
            xs, gate = project(rms_normalize(x, eps), w_in, b_in).chunk(2, dim=-1)  # [B, D] each
            xs = F.silu(conv_step(conv, xs, *conv_params))
            dt, b, c = torch.mm(xs, w_x).split(split, dim=-1)
            dt = F.softplus(torch.addmm(b_dt, dt, w_dt))  # [B, D]
            ssm.mul_((dt[:, :, None] * neg_a).exp_()).addcmul_((dt * xs)[:, :, None], b[:, None, :])
            y = torch.addcmul(torch.bmm(ssm, c[:, :, None])[..., 0], d, xs)
            x = add_projection(x, y.mul_(F.silu(gate)), w_out, b_out)
        return rms_norm(x, *cache.final_norm)


def _step_weights(block) -> tuple:
    """One Mamba block's weights for ``MambaBackbone._step``: projections as [in, out] (the block's
    RMSNorm folded into in_proj), the conv, the decay rates -exp(A_log) [D, N]. The
    activation is silu, as MambaBackbone configures it."""
    mixer = block.mixer
    split = [mixer.time_step_rank, mixer.ssm_state_size, mixer.ssm_state_size]
    return (
        dense(mixer.in_proj, block.norm),
        norm_eps(block.norm),
        bias(mixer.in_proj),
        conv_weights(mixer.conv1d),
        dense(mixer.x_proj),
        split,
        dense(mixer.dt_proj),
        bias(mixer.dt_proj),
        -torch.exp(mixer.A_log.detach().float()),
        mixer.D.detach(),
        dense(mixer.out_proj),
        bias(mixer.out_proj),
    )
