"""Logits processing and sampling, shared by every task.

Everything works on ``logits: [..., V]`` and returns ids ``[...]``. Filters set the logits of
excluded ids to ``-inf``; they follow the semantics of the matching ``transformers`` logits
processors (tested against them). A ``Sampler`` applies them in transformers' order:
classifier-free guidance (``guide``, on the cond/uncond pair), repetition penalty, temperature,
top-k, top-p, min-p, then draws.
"""

from __future__ import annotations

import torch

from audiolm.errors import AudiolmError, ConfigError

NEG_INF = float("-inf")


def restrict_to_range(logits: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Keep ids in ``[lo, hi)``. logits: [..., V]; lo, hi: [...] broadcastable to logits[..., 0].
    (A decoding loop masks with ``illegal_id_masks`` instead, built once for all its steps.)"""
    ids = torch.arange(logits.shape[-1], device=logits.device)
    legal = (ids >= lo.unsqueeze(-1)) & (ids < hi.unsqueeze(-1))
    return logits.masked_fill(~legal, NEG_INF)


def illegal_id_masks(id_ranges: torch.Tensor, vocab_size: int) -> list[torch.Tensor]:
    """id_ranges: [S, M, 2] legal ``[lo, hi)`` per step and stream -> for each step, the [M, V] bool
    mask of the ids outside its ranges, for ``logits.masked_fill(mask, -inf)`` (= ``restrict_to_range``).

    A decoding loop builds them once: steps whose ranges are equal (a pattern has a few distinct
    ones, repeated frame after frame) share one mask.
    """
    distinct, which = torch.unique(id_ranges.flatten(1), dim=0, return_inverse=True)
    lo, hi = distinct.view(-1, id_ranges.shape[1], 2).unsqueeze(-1).unbind(-2)  # [U, M, 1] each
    ids = torch.arange(vocab_size, device=id_ranges.device)
    masks = ((ids < lo) | (ids >= hi)).unbind(0)
    return [masks[i] for i in which.tolist()]


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


def min_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Keep ids whose probability is at least ``p`` times the top id's (min-p sampling); ``p <= 0`` keeps all."""
    if p <= 0:
        return logits
    probs = logits.softmax(dim=-1)
    drop = probs < p * probs.amax(dim=-1, keepdim=True)
    return logits.masked_fill(drop, NEG_INF)  # the top id always passes its own threshold


def repetition_penalty(logits: torch.Tensor, history: torch.Tensor, penalty: float, decay: float = 0.0) -> torch.Tensor:
    """Make ids seen in ``history`` less likely: positive logits are divided by the penalty, negative
    ones multiplied (CTRL's rule, as transformers applies it), once per distinct id.

    logits: [..., V]; history: [..., T] earlier ids, oldest first (negative entries are ignored).
    With ``decay > 0`` the penalty fades with distance: an id last seen ``d`` steps ago (``d = 1``
    for the latest) gets ``penalty ** (d ** -decay)``, so a far-back repeat is hardly penalised;
    ``decay = 0`` is transformers' ``RepetitionPenaltyLogitsProcessor``.
    """
    if penalty == 1.0 or history.shape[-1] == 0:
        return logits
    t = history.shape[-1]
    distance = torch.arange(t, 0, -1, device=logits.device, dtype=logits.dtype).expand(history.shape)
    never = float(t + 1)
    distance = torch.where(history >= 0, distance, torch.full_like(distance, never))
    # Distance to each id's latest occurrence (scatter with "amin" is deterministic, unlike a plain scatter).
    nearest = torch.full_like(logits, never).scatter_reduce(-1, history.clamp(min=0), distance, reduce="amin")
    seen = nearest < never
    factor = torch.full_like(logits, penalty) if decay == 0 else penalty ** nearest.pow(-decay)
    scaled = torch.where(logits < 0, logits * factor, logits / factor)
    return torch.where(seen, scaled, logits)


def classifier_free_guidance(
    cond: torch.Tensor, uncond: torch.Tensor, scale: float, rescale: float = 0.0
) -> torch.Tensor:
    """``uncond + scale * (cond - uncond)`` over logits [..., V] (transformers' ClassifierFreeGuidanceLogitsProcessor).

    ``rescale`` in [0, 1] pulls the guided logits' spread back towards the conditional one's (Lin et
    al. 2023, "Common Diffusion Noise Schedules and Sample Steps are Flawed", eq. 15-16): a large
    ``scale`` otherwise sharpens the distribution far beyond anything seen in training. Ids that
    are ``-inf`` in either input stay excluded.
    """
    guided = uncond + scale * (cond - uncond)
    if rescale <= 0:
        return guided
    finite = torch.isfinite(guided)
    std_cond = _masked_std(cond, finite)
    std_guided = _masked_std(guided, finite).clamp_min(1e-6)
    rescaled = guided * (std_cond / std_guided)
    return torch.where(finite, rescale * rescaled + (1 - rescale) * guided, guided)


def _masked_std(x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Standard deviation over the last axis counting only ``keep`` entries -> [..., 1]."""
    n = keep.sum(-1, keepdim=True).clamp_min(1)
    x = torch.where(keep, x, torch.zeros_like(x))
    mean = x.sum(-1, keepdim=True) / n
    var = torch.where(keep, (x - mean).square(), torch.zeros_like(x)).sum(-1, keepdim=True) / n
    return var.sqrt()


class Sampler:
    """Temperature, top-k, top-p, min-p, repetition penalty (with decay) and classifier-free guidance;
    ``temperature == 0`` is greedy (after guidance and repetition penalty).

    ``cfg_scale != 1`` asks the caller to run unconditional rows next to the conditional ones and to
    combine them with ``guide`` before sampling. A plain class on purpose: Hydra would turn a
    dataclass passed to ``instantiate`` into a config.
    """

    def __init__(
        self,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        min_p: float = 0.0,
        repetition_penalty: float = 1.0,
        repetition_decay: float = 0.0,
        cfg_scale: float = 1.0,
        cfg_rescale: float = 0.0,
    ):
        self.temperature, self.top_k, self.top_p, self.min_p = temperature, top_k, top_p, min_p
        self.repetition_penalty, self.repetition_decay = repetition_penalty, repetition_decay
        self.cfg_scale, self.cfg_rescale = cfg_scale, cfg_rescale
        checks = [
            (temperature >= 0, f"sampling.temperature must be >= 0, got {temperature}"),
            (0 < top_p <= 1, f"sampling.top_p must be in (0, 1], got {top_p}"),
            (0 <= min_p < 1, f"sampling.min_p must be in [0, 1), got {min_p}"),
            (repetition_penalty > 0, f"sampling.repetition_penalty must be > 0 (1 = off), got {repetition_penalty}"),
            (repetition_decay >= 0, f"sampling.repetition_decay must be >= 0, got {repetition_decay}"),
            (cfg_scale >= 0, f"sampling.cfg_scale must be >= 0 (1 = no guidance), got {cfg_scale}"),
            (0 <= cfg_rescale <= 1, f"sampling.cfg_rescale must be in [0, 1], got {cfg_rescale}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    @property
    def guided(self) -> bool:
        """True when the caller must provide unconditional logits (see ``guide``)."""
        return self.cfg_scale != 1.0

    def __repr__(self) -> str:
        return (
            f"Sampler(temperature={self.temperature}, top_k={self.top_k}, top_p={self.top_p}, min_p={self.min_p}, "
            f"repetition_penalty={self.repetition_penalty}, repetition_decay={self.repetition_decay}, "
            f"cfg_scale={self.cfg_scale}, cfg_rescale={self.cfg_rescale})"
        )

    def guide(self, cond: torch.Tensor, uncond: torch.Tensor) -> torch.Tensor:
        """Conditional and unconditional logits [..., V] -> guided logits [..., V]."""
        return classifier_free_guidance(cond.float(), uncond.float(), self.cfg_scale, self.cfg_rescale)

    def filter(self, logits: torch.Tensor, history: torch.Tensor | None = None) -> torch.Tensor:
        """logits: [..., V] -> processed logits (repetition penalty on ``history`` [..., T], temperature,
        top-k, top-p, min-p)."""
        logits = logits.float()
        if history is not None:
            logits = repetition_penalty(logits, history, self.repetition_penalty, self.repetition_decay)
        if self.temperature not in (0, 1):
            logits = logits / self.temperature
        return min_p_filter(top_p_filter(top_k_filter(logits, self.top_k), self.top_p), self.min_p)

    def __call__(
        self, logits: torch.Tensor, generator: torch.Generator | None = None, history: torch.Tensor | None = None
    ) -> torch.Tensor:
        """logits: [..., V] (history: [..., T] earlier ids, for the repetition penalty) -> ids: [...].
        Raises ``AudiolmError`` when the logits hold NaN or Inf (see ``check_draws``)."""
        ids, margins = self.draw(logits, generator, history)
        if margins is not None:
            check_draws(margins)
        return ids

    def draw(
        self, logits: torch.Tensor, generator: torch.Generator | None = None, history: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``__call__`` without its check: -> (ids [...], margins [...] or None when greedy). A decoding
        loop checks the margins of all its steps at once, with ``check_draws``."""
        if self.temperature == 0:
            if history is not None:
                logits = repetition_penalty(logits.float(), history, self.repetition_penalty, self.repetition_decay)
            return logits.argmax(dim=-1), None
        return draw(self.filter(logits, history).softmax(dim=-1), generator)


def draw(probs: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One id per distribution probs [..., V] -> (ids [...], margins [...]), exactly as
    ``torch.multinomial(probs, 1, generator=generator)`` draws it.

    A single multinomial draw is the exponential race argmax(p / q) with q ~ Exp(1), which is how
    torch implements it: the same generator calls give the same ids. What this skips is torch's
    validation of ``probs`` (about ten small operations and two host syncs per call, a few percent
    of a decoding step at batch 1); the winning ratio p / q, the margin, carries it instead: it is
    finite and positive exactly when the row was a distribution (no NaN or Inf, not all zero).
    """
    q = torch.empty_like(probs).exponential_(generator=generator)
    margins, ids = torch.div(probs, q).max(dim=-1)
    return ids, margins


def check_draws(margins: torch.Tensor) -> None:
    """Raise if any margin from ``draw`` shows that sampling met logits that are not a distribution."""
    if not bool((torch.isfinite(margins) & (margins > 0)).all()):
        raise AudiolmError(
            "sampling met logits with NaN or Inf (or every id excluded): the model's output is not "
            "finite. Scan its checkpoint with `python -m audiolm.cli.check_weights <ckpt>`; a run "
            "that diverged in training needs a lower learning rate or an earlier checkpoint"
        )
