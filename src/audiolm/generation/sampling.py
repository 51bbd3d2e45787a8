"""Logits processing and sampling, shared by every task.

Everything works on ``logits: [..., V]`` and returns ids ``[...]``. Filters set the logits of
excluded ids to ``-inf``; they follow the semantics of the matching ``transformers`` logits
processors (tested against them).
"""

from __future__ import annotations

import torch
from audiolm.errors import ConfigError

NEG_INF = float("-inf")


def restrict_to_range(logits: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor,
                      ids: torch.Tensor | None = None) -> torch.Tensor:
    """Keep ids in ``[lo, hi)``. logits: [..., V]; lo, hi: [...] broadcastable to logits[..., 0].

    ``ids`` is ``arange(V)``; a decoding loop passes it in so it is not rebuilt every step.
    """
    if ids is None:
        ids = torch.arange(logits.shape[-1], device=logits.device)
    legal = (ids >= lo.unsqueeze(-1)) & (ids < hi.unsqueeze(-1))
    return logits.masked_fill(~legal, NEG_INF)


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the ``k`` largest logits (ties at the k-th value are kept). ``k <= 0`` keeps all."""
    if k <= 0 or k >= logits.shape[-1]:
        return logits
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, NEG_INF)


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filter: keep the smallest set of ids whose probability mass reaches ``p``."""
    if p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, dim=-1, descending=False)
    cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    drop_sorted = cumulative <= (1 - p)
    drop_sorted[..., -1] = False  # always keep the most likely id
    drop = drop_sorted.scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, NEG_INF)


class Sampler:
    """Temperature, top-k and top-p sampling; ``temperature == 0`` is greedy.

    A plain class on purpose: Hydra would turn a dataclass passed to ``instantiate`` into a config.
    """

    def __init__(self, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0):
        self.temperature, self.top_k, self.top_p = temperature, top_k, top_p
        if self.temperature < 0:
            raise ConfigError(f"sampling.temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"sampling.top_p must be in (0, 1], got {self.top_p}")

    def __repr__(self) -> str:
        return f"Sampler(temperature={self.temperature}, top_k={self.top_k}, top_p={self.top_p})"

    def filter(self, logits: torch.Tensor) -> torch.Tensor:
        """logits: [..., V] -> processed logits (temperature, then top-k, then top-p)."""
        logits = logits.float()
        if self.temperature > 0:
            logits = logits / self.temperature
        return top_p_filter(top_k_filter(logits, self.top_k), self.top_p)

    def __call__(self, logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """logits: [..., V] -> ids: [...]."""
        if self.temperature == 0:
            return logits.argmax(dim=-1)
        probs = self.filter(logits).softmax(dim=-1)
        flat = probs.reshape(-1, probs.shape[-1])
        return torch.multinomial(flat, 1, generator=generator).reshape(probs.shape[:-1])
