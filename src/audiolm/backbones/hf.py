"""Shared plumbing for backbones that wrap a transformers base model.

``HFBackbone`` feeds ``inputs_embeds: [B, L, H]`` to ``self.model`` (a transformers ``*Model``
without head), returns ``last_hidden_state: [B, L, H]`` and drives the model's own cache. The
models are built with a one-entry vocabulary and their input embedding table is then removed:
audiolm embeds tokens itself, so the table would only be dead parameters. All other parameter
names stay those of the transformers model, so its weights load under the ``model.`` prefix.

``route_kernels_by_device`` makes the SSM families safe on every device when mamba-ssm or
causal-conv1d is installed; see its docstring.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
from collections.abc import Callable
from types import ModuleType

import torch
from transformers import DynamicCache, PreTrainedModel
from transformers.cache_utils import Cache

from audiolm.backbones.base import Backbone


class HFBackbone(Backbone):
    """A ``Backbone`` over a transformers base model.

    Subclasses build the model from their hyperparameters and pass it here. ``cache_argument``
    is the name under which the model's ``forward`` takes its cache.
    """

    cache_argument = "past_key_values"

    def __init__(self, model: PreTrainedModel):
        super().__init__()
        self.model = model
        self.hidden_size = model.config.hidden_size
        table = model.get_input_embeddings()
        name = next(name for name, child in model.named_children() if child is table)
        setattr(model, name, None)

    def new_cache(self, batch_size: int, max_length: int) -> Cache:
        """An empty ``DynamicCache`` for this model; it grows as positions are fed.

        Batch size and length are taken from the first forward, so both arguments are unused.
        """
        return DynamicCache(config=self.model.config)

    def forward(self, inputs_embeds: torch.Tensor, cache: Cache | None = None) -> tuple[torch.Tensor, Cache | None]:
        """inputs_embeds: [B, L, H] -> (hidden [B, L, H], the same cache, updated in place).

        Without a cache: one causal pass over the L positions, and no cache is built. With one:
        the L positions continue the sequence the cache holds.
        """
        out = self.model(inputs_embeds=inputs_embeds, use_cache=cache is not None, **{self.cache_argument: cache})
        return out.last_hidden_state, cache


class HFAttentionBackbone(HFBackbone):
    """An ``HFBackbone`` over an attention model, which can also attend both ways."""

    bidirectional = True

    def forward_bidirectional(
        self, inputs_embeds: torch.Tensor, padding_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """inputs_embeds: [B, L, H], padding_mask: [B, L] (True on real positions) -> hidden [B, L, H]:
        each query sees every real key."""
        b, n, _ = inputs_embeds.shape
        keys = (
            torch.ones(b, n, dtype=torch.bool, device=inputs_embeds.device)
            if padding_mask is None
            else padding_mask.to(device=inputs_embeds.device, dtype=torch.bool)
        )
        return self.forward_masked(inputs_embeds, keys[:, None, :].expand(b, n, n))

    def forward_masked(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """inputs_embeds: [B, L, H], attention_mask: [B, L, L] bool (True where query i may attend key j)
        -> hidden [B, L, H]. Every query must see at least one key.

        transformers uses a 4-D mask [B, 1, L, L] as given instead of building its causal one, and
        SDPA then runs without ``is_causal``.
        """
        mask = attention_mask.to(device=inputs_embeds.device, dtype=torch.bool)[:, None]
        return self.model(inputs_embeds=inputs_embeds, attention_mask=mask, use_cache=False).last_hidden_state


class SSMDecodeCache(DynamicCache):
    """transformers' cache of conv and SSM states per layer, plus the per-layer ``-exp(A_log)`` an
    SSM decode computes once instead of once per layer and step."""

    def __init__(self, config):
        super().__init__(config=config)
        self.neg_a: list[torch.Tensor] | None = None

    def decay_rates(self, layers) -> list[torch.Tensor]:
        if self.neg_a is None:
            self.neg_a = [-torch.exp(layer.mixer.A_log.float()) for layer in layers]
        return self.neg_a


def _any_on_cuda(args: tuple, kwargs: dict) -> bool:
    tensor = next(a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor))
    return tensor.is_cuda


def routed(original: Callable, torch_path: Callable, kernel_available: bool) -> Callable:
    """A function that runs ``original`` on CUDA tensors when its kernel is available and
    ``torch_path`` otherwise. Arguments ``torch_path`` does not take are dropped, as
    transformers does for its own fallbacks."""
    parameters = inspect.signature(torch_path).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())

    @functools.wraps(original)
    def dispatch(*args, **kwargs):
        if kernel_available and _any_on_cuda(args, kwargs):
            return original(*args, **kwargs)
        if not takes_any:
            kwargs = {k: v for k, v in kwargs.items() if k in parameters}
        return torch_path(*args, **kwargs)

    dispatch.original = original
    dispatch.torch_path = torch_path
    return dispatch


def route_kernels_by_device(
    module: ModuleType, packages: dict[str, str], torch_paths: dict[str, Callable] | None = None
) -> None:
    """Replace the kernel hooks ``packages`` names in a transformers modeling ``module`` by
    device dispatchers (see ``routed``).

    Why: transformers binds each hook, once at import, to the CUDA kernel of its package
    (mamba-ssm, causal-conv1d) when that imports and to its PyTorch reference otherwise, whatever
    device the tensors later live on. With the kernels installed, CPU training or decoding would
    hand CPU tensors to CUDA kernels. The dispatcher keeps transformers' choice for CUDA tensors
    when the package is installed and uses a PyTorch path everywhere else: ``torch_paths[name]``
    where given, transformers' own reference (the function its hook wraps) otherwise. The
    reference of a fused hook such as ``mamba_inner_fn`` returns None, which makes the mixer take
    its unfused path. Idempotent.

    packages: hook name in ``module`` -> import name of the package providing its kernel.
    """
    torch_paths = torch_paths or {}
    for name, package in packages.items():
        original = getattr(module, name)
        if hasattr(original, "torch_path"):
            continue
        torch_path = torch_paths.get(name) or inspect.unwrap(original)
        available = importlib.util.find_spec(package) is not None
        setattr(module, name, routed(original, torch_path, available))
