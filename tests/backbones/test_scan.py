"""The chunked selective scan against the sequential recurrence it replaces."""

import inspect

import pytest
import torch
import torch.nn.functional as F

from audiolm.backbones.scan import default_chunk_size, selective_scan


def sequential_scan(u, dt, A, B, C, D, z, delta_bias):
    """The recurrence one position at a time: u, dt, z [b, d, l]; A [d, n]; B, C [b, n, l]."""
    dt = F.softplus(dt + delta_bias[:, None])
    h = torch.zeros(u.shape[0], u.shape[1], A.shape[1])
    ys = []
    for t in range(u.shape[-1]):
        h = torch.exp(dt[:, :, t, None] * A) * h + (dt[:, :, t] * u[:, :, t])[..., None] * B[:, None, :, t]
        ys.append((h * C[:, None, :, t]).sum(-1))
    return (torch.stack(ys, -1) + u * D[:, None]) * F.silu(z), h


def random_inputs(length, b=2, d=6, n=4, dt_scale=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    u, z = torch.randn(b, d, length, generator=g), torch.randn(b, d, length, generator=g)
    dt = torch.randn(b, d, length, generator=g) * dt_scale
    A = -torch.rand(d, n, generator=g) * 2 - 0.1
    B, C = torch.randn(b, n, length, generator=g), torch.randn(b, n, length, generator=g)
    D, delta_bias = torch.randn(d, generator=g), torch.randn(d, generator=g)
    return [x.requires_grad_() for x in (u, dt, A, B, C, D, z, delta_bias)]


def scan(u, dt, A, B, C, D, z, delta_bias, chunk_size=None):
    return selective_scan(
        u,
        dt,
        A,
        B,
        C,
        D=D,
        z=z,
        delta_bias=delta_bias,
        delta_softplus=True,
        return_last_state=True,
        chunk_size=chunk_size,
    )


def outputs_and_grads(fn, inputs, seed=1):
    """y, last state and the gradients of a random linear function of both w.r.t. every input."""
    y, last = fn(*inputs)
    g = torch.Generator().manual_seed(seed)
    loss = (y * torch.randn(y.shape, generator=g)).sum() + (last * torch.randn(last.shape, generator=g)).sum()
    return y, last, torch.autograd.grad(loss, inputs)


@pytest.mark.parametrize(
    "length,chunk_size,dt_scale",
    [
        (1, None, 1.0),
        (37, 8, 1.0),  # not a multiple of the chunk: padded
        (613, None, 1.0),  # long, prime: default chunk size with padding
        (600, None, 1.0),  # long, default chunk size divides it
        (200, 16, 30.0),  # large dt: decays underflow to 0 over a few positions
    ],
)
def test_matches_sequential_recurrence(length, chunk_size, dt_scale):
    inputs = random_inputs(length, dt_scale=dt_scale)
    y, last, grads = outputs_and_grads(lambda *x: scan(*x, chunk_size=chunk_size), inputs)
    y_ref, last_ref, grads_ref = outputs_and_grads(sequential_scan, inputs)
    torch.testing.assert_close(y, y_ref, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(last, last_ref, rtol=1e-4, atol=1e-5)
    for name, grad, grad_ref in zip(["u", "dt", "A", "B", "C", "D", "z", "delta_bias"], grads, grads_ref, strict=True):
        scale = grad_ref.abs().max().clamp(min=1.0)
        torch.testing.assert_close(grad / scale, grad_ref / scale, rtol=1e-4, atol=1e-5, msg=f"grad {name}")


def test_huge_dt_stays_finite():
    inputs = random_inputs(64, dt_scale=1e4)
    y, last, grads = outputs_and_grads(lambda *x: scan(*x, chunk_size=8), inputs)
    assert all(t.isfinite().all() for t in (y, last, *grads))


def test_matches_transformers_torch_scan_and_its_signature():
    from transformers.models.mamba import modeling_mamba

    u, dt, A, B, C, D, z, delta_bias = random_inputs(50)
    kwargs = dict(D=D, z=z, delta_bias=delta_bias, delta_softplus=True, return_last_state=True)
    y, last = selective_scan(u, dt, A, B, C, **kwargs)
    y_ref, last_ref = inspect.unwrap(modeling_mamba.mamba_selective_scan)(u, dt, A, B, C, **kwargs)
    torch.testing.assert_close(y, y_ref, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(last, last_ref, rtol=1e-4, atol=1e-5)
    assert selective_scan(u, dt, A, B, C).shape == u.shape  # every optional argument optional


def test_chunk_size_does_not_change_the_result():
    inputs = random_inputs(90)
    y_ref, last_ref = scan(*inputs, chunk_size=90)
    for chunk_size in (1, 7, 32):
        y, last = scan(*inputs, chunk_size=chunk_size)
        torch.testing.assert_close(y, y_ref, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(last, last_ref, rtol=1e-4, atol=1e-5)


def test_keeps_input_dtype_and_returns_fp32_state():
    u, dt, A, B, C, D, z, delta_bias = (x.detach() for x in random_inputs(20))
    y, last = selective_scan(
        u.bfloat16(),
        dt.bfloat16(),
        A,
        B.bfloat16(),
        C.bfloat16(),
        D=D,
        z=z.bfloat16(),
        delta_bias=delta_bias,
        delta_softplus=True,
        return_last_state=True,
    )
    assert y.dtype == torch.bfloat16 and last.dtype == torch.float32


def test_default_chunk_size_prefers_divisors():
    assert default_chunk_size(512) == 32
    assert 1500 % default_chunk_size(1500) == 0
    assert default_chunk_size(613) == 32  # prime: no divisor near sqrt, so padding
    assert default_chunk_size(10_000) == 100
