"""The autoregressive decoding loop shared by every task.

A model is seen as three parts: ``embed(ids [R, L, M]) -> [R, L, H]`` for the steps it generates,
a ``Backbone`` and ``head(hidden [R, L, H]) -> logits [R, L, M, V]``. The task embeds its own
prefix (start id, prompt, text: whatever conditions the sequence) and the loop continues it.

With ``use_cache`` the prefix runs once and every new step feeds one position through the
backbone's cache (recurrent state or KV), so nothing is recomputed: an SSM step costs the same at
position 100 and at 1,500; an attention step still reads every key and value held, so its time
grows with the position. ``use_cache=False`` recomputes the whole sequence each step; it exists as
the reference that benchmarks and tests compare against.

At batch 1 a step is mostly fixed costs per tensor operation, so the loop keeps its own share
small: the legal-id masks are built once, and sampling is checked once, after the loop.

Classifier-free guidance: with ``guided`` the prefix holds 2B rows, B conditional
then B unconditional ones of the same length; each step combines their logits into one
distribution per pair, and the token drawn is fed to both rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from audiolm.backbones.base import Backbone
from audiolm.generation.sampling import NEG_INF, Sampler, check_draws, illegal_id_masks


@dataclass
class Decoded:
    """steps: [B, S', M] sampled ids, S' <= S as decoding ends once every row stopped (after a row's
    stop, its stream 0 holds the stop id); lengths: [B] steps before the stop id (S for rows that
    never stopped: they hit the max-duration guard); stopped: [B] bool."""

    steps: torch.Tensor
    lengths: torch.Tensor
    stopped: torch.Tensor


@torch.inference_mode()
def decode(
    embed: Callable[[torch.Tensor], torch.Tensor],
    backbone: Backbone,
    head: Callable[[torch.Tensor], torch.Tensor],
    prefix: torch.Tensor,
    id_ranges: torch.Tensor,
    sampler: Sampler,
    forced: torch.Tensor | None = None,
    stop_id: int | None = None,
    guided: bool = False,
    use_cache: bool = True,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> Decoded:
    """Sample up to S steps after ``prefix``; stop early once every row drew ``stop_id``.

    prefix: [R, P, H] embedded prefix; R = B rows, or with ``guided`` 2B rows (B conditional, then
    B unconditional), combined by ``sampler.guide``. The last prefix position predicts the first step.
    id_ranges: [S, M, 2] legal ``[lo, hi)`` per step and stream: S is the most steps decoded (the
    max-duration guard).
    forced: [B, S', M] ids that steps ``< S'`` must take, -1 where free: a prompt can fix some
    streams of steps past its prefix (the delay pattern's lower levels of the last prompt frames).
    stop_id: a row that draws it in stream 0 is finished; its later steps are filled with it.
    """
    rows, n_steps, n_streams = prefix.shape[0], id_ranges.shape[0], id_ranges.shape[1]
    b = rows // 2 if guided else rows
    if guided and rows != 2 * b:
        raise ValueError(f"classifier-free guidance needs conditional and unconditional rows, got {rows} rows")
    device = prefix.device
    id_ranges = id_ranges.to(device)
    seq = torch.empty(b, n_steps, n_streams, dtype=torch.long, device=device)
    stopped = torch.zeros(b, dtype=torch.bool, device=device)
    lengths = torch.full((b,), n_steps, dtype=torch.long, device=device)
    penalise = sampler.repetition_penalty != 1.0
    # Steps with a forced id somewhere; the others skip the merge (a prompt forces only a few steps).
    forcing = [] if forced is None else (forced >= 0).any(-1).any(0).tolist()
    cache = backbone.new_cache(rows, prefix.shape[1] + n_steps) if use_cache else None
    hidden, cache = backbone(prefix, cache)
    illegal, drawn, n_done = None, None, 0
    for step in tqdm(range(n_steps), desc="generate", disable=not progress, leave=False):
        logits = head(hidden[:, -1:])[:, 0]  # [R, M, V]
        if illegal is None:  # the vocabulary size is known from the first logits
            illegal = illegal_id_masks(id_ranges, logits.shape[-1])
        if guided:
            logits = sampler.guide(logits[:b], logits[b:])
        history = seq[:, :step].transpose(1, 2) if penalise else None  # [B, M, step]
        tokens, margins = sampler.draw(logits.masked_fill(illegal[step], NEG_INF), generator, history)
        if margins is not None:  # checked once, after the loop (see ``sampling.draw``)
            if drawn is None:
                drawn = margins.new_empty((n_steps, *margins.shape))
            drawn[step] = margins
        if step < len(forcing) and forcing[step]:
            tokens = torch.where(forced[:, step] >= 0, forced[:, step], tokens)
        if stop_id is not None:
            tokens[:, 0].masked_fill_(stopped, stop_id)
            new_stop = (tokens[:, 0] == stop_id) & ~stopped
            lengths.masked_fill_(new_stop, step)
            stopped |= new_stop
        seq[:, step] = tokens
        n_done = step + 1
        if n_done == n_steps or (stop_id is not None and bool(stopped.all())):
            break
        fed = seq[:, step : step + 1] if use_cache else seq[:, :n_done]
        fed = embed(fed.repeat(2, 1, 1) if guided else fed)
        hidden, cache = backbone(fed, cache) if use_cache else backbone(torch.cat([prefix, fed], dim=1))
    if drawn is not None:
        check_draws(drawn[:n_done])
    return Decoded(steps=seq[:, :n_done], lengths=lengths, stopped=stopped)
