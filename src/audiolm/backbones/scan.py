"""A chunked selective scan for Mamba-1 in plain PyTorch, for devices without the CUDA kernels.

The selective scan is the linear recurrence, per channel d and state index n,

    h[t] = a[t] * h[t-1] + x[t],   a[t] = exp(dt[t] * A),   x[t] = dt[t] * u[t] * B[t]
    y[t] = (sum_n C[t] * h[t] + D * u[t]) * silu(z[t])

transformers' reference runs it as a Python loop over all L positions (L tiny steps forward and
as many in backward). Here the L positions are cut into c chunks of T positions, and every loop
step works on all chunks at once:

1. a T-step loop finds the state at the end of each chunk as if the chunk started from zero;
2. a c-step loop over chunk boundaries carries the true start state of each chunk:
   start[k+1] = exp(A * sum(dt over chunk k)) * start[k] + local_end[k];
3. a second T-step loop reruns every chunk from its true start, keeping all states for y and
   for backward.

Every decay is a product of factors exp(dt * A) <= 1, never a quotient, so nothing overflows
however large dt is (the closed form with exp(-cumsum(dt * A)) would). That is 2T + c Python
steps forward and as many backward, with T ~ sqrt(L) by default.

Backward is written by hand (``_ChunkedScan``) rather than left to autograd: the gradient of a
linear recurrence is the same recurrence run backwards in time, so it reuses the three passes,
where autograd over the loops would store every intermediate and run about 5x slower. For the same
reason of speed on CPU, both directions write into a few preallocated slab buffers (a fresh
multi-megabyte tensor per operation costs page faults that can exceed the arithmetic), and all
elementwise work happens in one memory layout, positions-major ([b, l, d] in memory), converting
inputs and gradients once at the boundary: elementwise ops that mix a [b, d, l] and a [b, l, d]
layout run several times slower than either.

Axis names: b batch, d channels (Mamba's intermediate size), l positions, n state size,
T positions per chunk, c chunks. Computation is in fp32, as in the CUDA kernel.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable


def default_chunk_size(length: int) -> int:
    """Positions per chunk for a sequence of ``length``: about sqrt(length), which balances the
    position and boundary loops, and at least 32, which keeps each step's slab (b, c, n, d)
    small enough to stay in cache. A divisor of ``length`` within a factor 2 of that is
    preferred: without padding, chunking is a free view."""
    target = max(32, math.isqrt(length))
    divisors = [T for T in range(target // 2, 2 * target + 1) if length % T == 0]
    return min(divisors, key=lambda T: abs(T - target)) if divisors else target


def _to_chunks(x: torch.Tensor, T: int) -> torch.Tensor:
    """[b, k, l] -> [b, c, T, k], zero-padded to c * T positions; a view when the memory of
    ``x`` is laid out [b, l, k] (as transformers passes the gate z, B and C) and l = c * T.

    Zero padding is neutral at the end of a sequence: dt = 0 gives a = 1 and x = 0, so the
    state passes through the padding unchanged and the last state is that of position l-1."""
    x = x.transpose(1, 2)
    if x.stride(-1) != 1:
        x = x.contiguous()
    if pad := -x.shape[1] % T:
        x = F.pad(x, (0, 0, 0, pad))
    return x.unflatten(1, (-1, T))


def _from_chunks(x: torch.Tensor, length: int, contiguous: bool = False) -> torch.Tensor:
    """[b, c, T, k] -> [b, k, length]: a view of [b, l, k] memory, or a [b, k, l] copy if ``contiguous``."""
    x = x.flatten(1, 2)[:, :length].transpose(1, 2)
    return x.contiguous() if contiguous else x


class _ChunkedScan(torch.autograd.Function):
    """y = (C . h + D * u) * silu(z) with h[t] = exp(dt[t] * A) * h[t-1] + dt[t] * u[t] * B[t], h[-1] = 0.

    Inputs (fp32): dt, u: [b, d, l] (dt after bias and softplus); A: [d, n]; B, C: [b, n, l];
    D: [d] or None; z: [b, d, l] or None; T: positions per chunk.
    Outputs: y: [b, d, l], a view of [b, l, d] memory; last state: [b, d, n].
    Inside, sequences are chunked as [b, c, T, k] and step t of all chunks, [:, :, t], is one
    slab; states are [b, c, n, d] per step.
    """

    @staticmethod
    def forward(ctx, dt, u, A, B, C, D, z, T):
        length = dt.shape[-1]
        dt_c, u_c, B_c, C_c = (_to_chunks(x, T) for x in (dt, u, B, C))
        A_t = A.t().contiguous()  # [n, d]
        h_start, chunk_decay, states, y = _scan(dt_c, dt_c * u_c, A_t, B_c, C_c)

        if D is not None:
            y.addcmul_(u_c, D)
        z_c = pre_gate = None
        if z is not None:
            z_c, pre_gate = _to_chunks(z, T), y
            y = pre_gate * F.silu(z_c)
        ctx.save_for_backward(dt_c, u_c, A_t, B_c, C_c, D, h_start, chunk_decay, states, z_c, pre_gate)
        last = states[:, -1, -1].transpose(1, 2).contiguous()  # [b, d, n]
        return _from_chunks(y, length), last

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y, grad_last):
        dt_c, u_c, A_t, B_c, C_c, D, h_start, chunk_decay, states, z_c, pre_gate = ctx.saved_tensors
        T, length = dt_c.shape[2], grad_y.shape[-1]
        g = _to_chunks(grad_y, T)  # [b, c, T, d]
        grad_D = grad_z = None
        if z_c is not None:
            sig = torch.sigmoid(z_c)
            grad_z = g * pre_gate * sig * (1 + z_c * (1 - sig))  # silu'(z) = sig * (1 + z * (1 - sig))
            g = g * (z_c * sig)
        if D is not None:
            grad_D = (g * u_c).sum((0, 1, 2))
        grad_last = grad_last.transpose(1, 2).float()  # [b, n, d]

        grad_dt, grad_du, grad_A, grad_B, grad_C = _scan_backward(
            dt_c, dt_c * u_c, A_t, B_c, C_c, h_start, chunk_decay, states, g, grad_last
        )
        grad_u = grad_du * dt_c
        if D is not None:
            grad_u.addcmul_(g, D)
        grad_dt.addcmul_(grad_du, u_c)
        return (
            _from_chunks(grad_dt, length, contiguous=True),
            _from_chunks(grad_u, length, contiguous=True),
            grad_A.t(),
            _from_chunks(grad_B, length),
            _from_chunks(grad_C, length),
            grad_D,
            None if grad_z is None else _from_chunks(grad_z, length),
            None,
        )


def _scan(dt, du, A_t, B, C):
    """The three forward passes. dt, du: [b, c, T, d]; A_t: [n, d]; B, C: [b, c, T, n].

    Returns the true start state of each chunk [b, c, n, d], each chunk's total decay
    [b, c, n, d], all states [b, c, T, n, d] and y = C . h: [b, c, T, d]."""
    b, c, T, d = dt.shape
    n = A_t.shape[0]
    a, x = dt.new_empty(b, c, n, d), dt.new_empty(b, c, n, d)

    def load(t: int) -> None:  # a <- exp(dt[t] * A), x <- du[t] * B[t]; both [b, c, n, d]
        torch.mul(dt[:, :, t, None], A_t, out=a).exp_()
        torch.mul(du[:, :, t, None], B[:, :, t, :, None], out=x)

    # 1. The state at the end of each chunk, each chunk starting from zero.
    h = dt.new_zeros(b, c, n, d)
    for t in range(T):
        load(t)
        torch.addcmul(x, a, h, out=h)

    # 2. True start states: start[k+1] = decay(chunk k) * start[k] + local_end[k].
    chunk_decay = torch.exp(dt.sum(2)[:, :, None] * A_t)
    ends, decays = h.unbind(1), chunk_decay.unbind(1)
    start = torch.zeros_like(ends[0])
    starts = [start]
    for k in range(c - 1):
        start = torch.addcmul(ends[k], decays[k], start)
        starts.append(start)
    h_start = torch.stack(starts, 1)

    # 3. Rerun every chunk from its true start, keeping all states, and read y off each state.
    states = dt.new_empty(b, c, T, n, d)
    y = dt.new_empty(b, c, T, d)
    prev = h_start
    for t in range(T):
        load(t)
        prev = torch.addcmul(x, a, prev, out=states[:, :, t])
        y[:, :, t] = torch.matmul(C[:, :, t, None, :], prev).squeeze(2)  # [b, c, 1, n] @ [b, c, n, d]
    return h_start, chunk_decay, states, y


def _scan_backward(dt, du, A_t, B, C, h_start, chunk_decay, states, grad_y, grad_last):
    """Gradients of y = C . h w.r.t. dt, du: [b, c, T, d], A_t: [n, d] and B, C: [b, c, T, n],
    given grad_y: [b, c, T, d] and grad_last: [b, n, d].

    With g[t] = dL/dh[t]:  g[t] = C[t] * grad_y[t] + a[t+1] * g[t+1], the forward recurrence
    reversed in time, so it runs in the same three passes, right to left."""
    b, c, T, d = dt.shape
    n = A_t.shape[0]
    a, s = dt.new_empty(b, c, n, d), dt.new_empty(b, c, n, d)

    def decay(t: int) -> torch.Tensor:  # a <- exp(dt[t] * A)
        return torch.mul(dt[:, :, t, None], A_t, out=a).exp_()

    # 1. Per chunk, the gradient its own outputs send past its first position, a[first] * g[first].
    g = dt.new_zeros(b, c, n, d)
    for t in reversed(range(T)):
        g.addcmul_(grad_y[:, :, t, None], C[:, :, t, :, None]).mul_(decay(t))

    # 2. Gradient entering each chunk at its last position from everything after it.
    heads, decays = g.unbind(1), chunk_decay.unbind(1)
    incoming = grad_last
    incomings = [incoming]
    for k in range(c - 1, 0, -1):
        incoming = torch.addcmul(heads[k], decays[k], incoming)
        incomings.append(incoming)
    g = torch.stack(incomings[::-1], 1)  # [b, c, n, d]

    # 3. Rerun right to left with the true incoming gradients, collecting parameter gradients.
    grad_dt, grad_du = torch.empty_like(dt), torch.empty_like(du)
    grad_B, grad_C = dt.new_empty(b, c, T, n), dt.new_empty(b, c, T, n)
    grad_A = torch.zeros_like(g)  # summed over b and c at the end
    for t in reversed(range(T)):
        state = states[:, :, t]
        grad_C[:, :, t] = torch.matmul(state, grad_y[:, :, t, :, None]).squeeze(-1)
        g.addcmul_(grad_y[:, :, t, None], C[:, :, t, :, None])  # now dL/dh[t]
        grad_du[:, :, t] = torch.matmul(B[:, :, t, None, :], g).squeeze(2)
        grad_B[:, :, t] = torch.matmul(g, du[:, :, t, :, None]).squeeze(-1)
        g.mul_(decay(t))  # a[t] * dL/dh[t]: what flows on to h[t-1]
        torch.mul(g, states[:, :, t - 1] if t else h_start, out=s)  # dL/d(dt[t] * A)
        grad_A.addcmul_(s, dt[:, :, t, None])
        grad_dt[:, :, t] = s.mul_(A_t).sum(2)
    return grad_dt, grad_du, grad_A.sum((0, 1)), grad_B, grad_C


def selective_scan(
    hidden_states: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
    chunk_size: int | None = None,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Mamba-1 selective scan from a zero initial state, with the arguments and results of
    ``transformers.models.mamba.modeling_mamba.mamba_selective_scan`` (and of mamba-ssm's
    ``selective_scan_fn``).

    Args:
        hidden_states: u, [b, d, l].
        dt: time steps before bias and softplus, [b, d, l].
        A: continuous state matrix (negative entries for a decaying state), [d, n].
        B: input matrix per position, [b, n, l].
        C: output matrix per position, [b, n, l].
        D: skip connection, [d].
        z: gate, [b, d, l]; the output is multiplied by silu(z).
        delta_bias: added to dt, [d].
        delta_softplus: apply softplus to dt after the bias.
        return_last_state: also return the state after the last position.
        chunk_size: positions per chunk, T; ``default_chunk_size(l)`` if None.

    Returns:
        y: [b, d, l] in the dtype of ``hidden_states``; with ``return_last_state`` also the
        last state h[l-1]: [b, d, n] in fp32.
    """
    out_dtype = hidden_states.dtype
    dt = dt.float()
    if delta_bias is not None:
        dt = dt + delta_bias.float()[:, None]
    if delta_softplus:
        dt = F.softplus(dt)
    length = dt.shape[-1]
    T = min(chunk_size or default_chunk_size(length), length)
    y, last = _ChunkedScan.apply(
        dt,
        hidden_states.float(),
        A.float(),
        B.float(),
        C.float(),
        None if D is None else D.float(),
        None if z is None else z.float(),
        T,
    )
    y = y.to(out_dtype)
    return (y, last) if return_last_state else y
