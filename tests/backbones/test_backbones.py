"""Backbones: cached decoding equals the full forward, parameter names, and the Mamba kernel dispatch."""

import functools
import inspect

import pytest
import torch
import torch.nn.functional as F
from transformers import MambaModel
from transformers.models.mamba import modeling_mamba

from audiolm.backbones.hf import route_kernels_by_device, routed
from audiolm.backbones.llama import LlamaBackbone
from audiolm.backbones.mamba import MambaBackbone
from audiolm.backbones.mamba2 import Mamba2Backbone
from audiolm.backbones.scan import selective_scan
from audiolm.backbones.transformer import TransformerBackbone

H = 32
BACKBONES = {
    "mamba": lambda: MambaBackbone(hidden_size=H, num_layers=2),
    "mamba2": lambda: Mamba2Backbone(hidden_size=H, num_layers=2, head_dim=16, state_size=16, n_groups=2, chunk_size=8),
    "llama": lambda: LlamaBackbone(
        hidden_size=H, num_layers=2, num_heads=4, intermediate_size=64, max_position_embeddings=64
    ),
    "transformer": lambda: TransformerBackbone(hidden_size=H, num_layers=2, num_heads=4, max_position_embeddings=64),
}
MAMBA_HOOKS = [
    "mamba_inner_fn",
    "mamba_selective_scan",
    "mamba_selective_state_update",
    "causal_conv1d_fn",
    "causal_conv1d_update",
]


def build(name):
    torch.manual_seed(0)
    return BACKBONES[name]().eval()


def embeddings(b=2, length=23):
    return torch.randn(b, length, H, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("name", BACKBONES)
@pytest.mark.parametrize("prefix", [1, 9])
def test_decoding_through_the_cache_equals_the_full_forward(name, prefix):
    backbone, x = build(name), embeddings()
    with torch.no_grad():
        full, none = backbone(x)
        cache = backbone.new_cache(x.shape[0], x.shape[1])
        hidden, returned = backbone(x[:, :prefix], cache)
        assert none is None and returned is cache
        torch.testing.assert_close(hidden, full[:, :prefix], rtol=0, atol=1e-5)  # prefill
        for t in range(prefix, x.shape[1]):
            hidden, cache = backbone(x[:, t : t + 1], cache)
            torch.testing.assert_close(hidden, full[:, t : t + 1], rtol=0, atol=1e-5, msg=f"position {t}")


@pytest.mark.parametrize("name", BACKBONES)
def test_continuing_the_cache_by_several_positions(name):
    backbone, x = build(name), embeddings()
    with torch.no_grad():
        full, _ = backbone(x)
        cache = backbone.new_cache(x.shape[0], x.shape[1])
        pieces = [backbone(x[:, a:b], cache)[0] for a, b in [(0, 6), (6, 7), (7, 15), (15, 23)]]
    torch.testing.assert_close(torch.cat(pieces, 1), full, rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", BACKBONES)
def test_every_parameter_is_used(name):
    backbone = build(name)  # in particular, no input embedding table
    assert backbone.hidden_size == H
    hidden, _ = backbone.train()(embeddings())
    hidden.sum().backward()
    assert [n for n, p in backbone.named_parameters() if p.grad is None] == []


def test_mamba_parameter_names_are_those_of_transformers_mamba_model():
    backbone = build("mamba")
    reference = MambaModel(backbone.model.config).state_dict()
    assert set(backbone.state_dict()) == {f"model.{k}" for k in reference if k != "embeddings.weight"}
    backbone.model.load_state_dict({k: v for k, v in reference.items() if k != "embeddings.weight"})


def test_mamba_scan_dispatch_falls_through_to_the_chunked_scan_on_cpu():
    assert modeling_mamba.mamba_selective_scan.torch_path is selective_scan
    backbone = build("mamba").train()
    hidden, _ = backbone(embeddings())
    graph, seen = [hidden.grad_fn], set()
    while graph:
        node = graph.pop()
        if node is not None and node not in seen:
            seen.add(node)
            graph.extend(next_node for next_node, _ in node.next_functions)
    assert "_ChunkedScanBackward" in {type(node).__name__ for node in seen}


def test_mamba_gradients_match_transformers_torch_path(monkeypatch):
    backbone, x = build("mamba").train(), embeddings(length=40)

    def gradients():
        backbone.zero_grad()
        F.mse_loss(backbone(x)[0], torch.ones_like(x)).backward()
        return {n: p.grad.clone() for n, p in backbone.named_parameters()}

    ours = gradients()
    monkeypatch.setattr(modeling_mamba, "mamba_selective_scan", inspect.unwrap(modeling_mamba.mamba_selective_scan))
    reference = gradients()
    for name, grad in ours.items():
        torch.testing.assert_close(grad, reference[name], rtol=1e-4, atol=1e-6, msg=name)


def test_routed_sends_cpu_tensors_to_the_torch_path_even_with_a_kernel():
    def kernel(x, **kwargs):
        raise AssertionError("a CUDA kernel got CPU tensors")

    def torch_path(x, scale=1):
        return x * scale

    dispatch = routed(kernel, torch_path, kernel_available=True)
    assert torch.equal(dispatch(torch.ones(2), scale=3, unknown_option=True), torch.full((2,), 3.0))


def test_mamba_trains_and_decodes_on_cpu_when_the_kernels_are_installed(monkeypatch):
    """Emulates mamba-ssm and causal-conv1d being importable: every hook transformers bound is a
    CUDA-only kernel (wrapping its reference as transformers' hooks do); CPU must never reach one."""

    def cuda_only(reference):
        @functools.wraps(reference)
        def kernel(*args, **kwargs):
            raise AssertionError(f"CUDA kernel {reference.__name__} called with CPU tensors")

        return kernel

    for hook in MAMBA_HOOKS:
        monkeypatch.setattr(modeling_mamba, hook, cuda_only(inspect.unwrap(getattr(modeling_mamba, hook))))
    route_kernels_by_device(
        modeling_mamba,
        dict.fromkeys(MAMBA_HOOKS, "torch"),  # "torch" imports: kernels "installed"
        torch_paths={"mamba_selective_scan": selective_scan},
    )

    backbone, x = build("mamba").train(), embeddings()
    backbone(x)[0].sum().backward()
    with torch.no_grad():
        cache = backbone.eval().new_cache(x.shape[0], x.shape[1])
        backbone(x[:, :5], cache)
        backbone(x[:, 5:6], cache)
