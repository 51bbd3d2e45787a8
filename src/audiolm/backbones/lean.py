"""Decode-ready weights and the small fused operations of the backbones' lean decoding paths.

At batch 1 a decoding step multiplies one row [1, H] by every weight matrix once: the arithmetic
is tiny, and the time goes to reading the weights and to the fixed cost of each tensor operation,
~30 per layer in a plain module-by-module forward. That fixed cost is 1-2 us on CPU with warm
caches but several times more in a decoding step, where each layer's weights stream through the
cache between the operations (measured: a 768-float multiply takes 2 us, and 20 us right after
4 MB went through the cache). So the lean paths prepare their weights once per decode (in
``new_cache``) and then run as few operations per layer as they can:

- weights are stored transposed, [in, out] contiguous, for ``x @ w``: at batch 1 on CPU that
  layout is faster than ``F.linear``'s [out, in] one (by ~5% over a whole model's weights read
  from memory, up to 2.5x for a matrix that stays in cache);
- an RMSNorm's weight g is folded into the projection that follows it (``W diag(g)``), which
  then takes the normalised input (``rms_normalize``): one multiply less per norm;
- LoRA adapters are included through ``effective_weight``.

The results equal the modules' forward up to float rounding; tests hold every path to it.
"""

from __future__ import annotations

import torch
from torch import nn

from audiolm.adapters.lora import effective_weight
from audiolm.backbones.hf import SSMDecodeCache


def dense(linear: nn.Module, norm: nn.Module | None = None) -> torch.Tensor:
    """A Linear's weight [out, in] (LoRA included) -> [in, out] contiguous for ``x @ w``, with the
    weight of the RMSNorm module before it (``norm``) folded in."""
    weight = effective_weight(linear)
    if norm is not None:
        weight = weight * norm.weight
    return weight.detach().t().contiguous()


def bias(linear: nn.Module) -> torch.Tensor | None:
    """A Linear's bias (through a LoRA wrapper too), or None."""
    return None if linear.bias is None else linear.bias.detach()


def norm_eps(norm: nn.Module) -> torch.Tensor:
    """An RMSNorm module's epsilon as a 0-d fp32 tensor for ``rms_normalize``: a Python number operand
    costs an op about 1.3 us more than a tensor one (it is wrapped into a tensor on every call)."""
    return torch.tensor(norm.variance_epsilon, dtype=torch.float32, device=norm.weight.device)


def rms_normalize(x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """x: [..., H] -> x * rsqrt(mean(x^2) + eps), an RMSNorm without its weight, computed in fp32 and
    returned in x's dtype as transformers' RMSNorms do. The scale takes three operations where
    ``x.pow(2).mean(-1) + eps`` and rsqrt take twice as long."""
    xf = x.float()
    norm = torch.linalg.vector_norm(xf, dim=-1, keepdim=True)
    return (xf * torch.addcmul(eps, norm, norm, value=1 / x.shape[-1]).rsqrt_()).to(x.dtype)


def project(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """x: [R, in] @ weight [in, out] (from ``dense``), plus ``bias``."""
    out = torch.mm(x, weight)
    return out if bias is None else out.add_(bias)


def add_projection(
    x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """The residual update ``x + y @ weight (+ bias)``, x: [R, out], y: [R, in]: one fused multiply-add."""
    out = torch.addmm(x, y, weight)
    return out if bias is None else out.add_(bias)


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """transformers' RMSNorm of x [..., H] with ``weight`` [H], where nothing follows to fold it into."""
    return rms_normalize(x, eps).mul_(weight)


def conv_weights(conv1d: nn.Conv1d) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A depthwise Conv1d's kernel [C, K] and bias [C] (or None), for ``conv_step``."""
    return conv1d.weight.detach()[:, 0], bias(conv1d)


def conv_step(state: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """One position of a depthwise causal conv: shift x [B, C] into ``state`` [B, C, K] (in place, as
    transformers' single-step update does) and return the conv output [B, C] before activation.
    weight, bias: from ``conv_weights``."""
    state.copy_(torch.cat([state[:, :, 1:], x[:, :, None]], dim=-1))
    out = torch.linalg.vecdot(state, weight)
    return out if bias is None else out.add_(bias)


class SSMStepCache(SSMDecodeCache):
    """transformers' conv and SSM states per layer, plus the decode-ready weights of a Mamba
    backbone's lean single-position step: ``step_weights[i]`` for layer i (a tuple the backbone
    builds in ``new_cache`` and unpacks in its step) and ``final_norm``, the (weight, eps) of the
    last RMSNorm."""

    def __init__(self, config, step_weights: list[tuple], final_norm: nn.Module):
        super().__init__(config)
        self.step_weights = step_weights
        self.final_norm = final_norm.weight.detach(), norm_eps(final_norm)
