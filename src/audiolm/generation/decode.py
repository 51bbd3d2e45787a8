"""The autoregressive decoding loop shared by the token LMs.

A model is seen as three parts: ``embed(ids [B, L, M]) -> [B, L, H]``, a ``Backbone`` and
``head(hidden [B, L, H]) -> logits [B, L, M, V]``. With ``use_cache`` the prefix runs once and
every new step feeds one position through the backbone's cache (recurrent state or KV), so a
step costs the same at position 100 and at 1,500. ``use_cache=False`` recomputes the whole
sequence each step; it exists as the reference that benchmarks and tests compare against.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from tqdm.auto import tqdm

from audiolm.backbones.base import Backbone
from audiolm.generation.sampling import Sampler, restrict_to_range


@torch.inference_mode()
def decode(
    embed: Callable[[torch.Tensor], torch.Tensor],
    backbone: Backbone,
    head: Callable[[torch.Tensor], torch.Tensor],
    prefix: torch.Tensor,
    id_ranges: torch.Tensor,
    sampler: Sampler,
    forced: torch.Tensor | None = None,
    use_cache: bool = True,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Continue ``prefix`` until every step that ``id_ranges`` describes is filled.

    prefix: [B, 1 + P, M] ids: a start id then P known steps.
    id_ranges: [S, M, 2] legal ``[lo, hi)`` per target step (S >= P).
    forced: [B, S', M] ids that steps ``< S'`` must take, -1 where free: a prompt can fix some
    streams of steps past its prefix (the delay pattern's lower levels of the last prompt frames).
    Returns steps: [B, S, M], the P known steps followed by S - P sampled (or forced) ones.
    """
    n_known, n_total = prefix.shape[1] - 1, id_ranges.shape[0]
    if n_known > n_total:
        raise ValueError(f"prefix has {n_known} steps but only {n_total} are to be decoded")
    id_ranges = id_ranges.to(prefix.device)
    seq = torch.empty(prefix.shape[0], 1 + n_total, prefix.shape[2], dtype=torch.long, device=prefix.device)
    seq[:, : 1 + n_known] = prefix
    cache = backbone.new_cache(prefix.shape[0], 1 + n_total) if use_cache else None
    hidden, cache = backbone(embed(prefix), cache)
    vocab = None
    for step in tqdm(range(n_known, n_total), desc="generate", disable=not progress, leave=False):
        logits = head(hidden[:, -1:])[:, 0]  # [B, M, V]
        if vocab is None:
            vocab = torch.arange(logits.shape[-1], device=logits.device)
        lo, hi = id_ranges[step, :, 0], id_ranges[step, :, 1]
        tokens = sampler(restrict_to_range(logits, lo, hi, vocab), generator=generator)
        if forced is not None and step < forced.shape[1]:
            tokens = torch.where(forced[:, step] >= 0, forced[:, step], tokens)
        seq[:, 1 + step] = tokens
        if step + 1 < n_total:
            if use_cache:
                hidden, cache = backbone(embed(seq[:, 1 + step : 2 + step]), cache)
            else:
                hidden, _ = backbone(embed(seq[:, : 2 + step]))
    return seq[:, 1:]
