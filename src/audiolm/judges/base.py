"""The one judge interface: a batch of clips (plus texts or references where a judge needs them) in,
named scores per clip and their mean out.

    scores = judge.score(clips, texts=..., references=..., speakers=...)
    scores.per_clip["wer"][i]   one clip's score        scores.mean["wer"]   the batch's
    scores.notes                one line per clip that could not be judged, and why

A judge resamples every clip to its own ``sample_rate``. A clip it cannot judge (empty, shorter than
``min_seconds``, NaN/Inf, silent, or with no speech where speech is needed) is never passed to the
model: it gets the judge's ``floor`` (the worst score on each scale, so broken output is never
rewarded), counts in the mean, and raises a ``JudgeWarning`` that names the clip and the reason.
"""

from __future__ import annotations

import math
import warnings
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch

from audiolm.audio.io import resample
from audiolm.tasks.inference import Audio

SILENT_PEAK = 1e-4  # -80 dBFS: below this a clip holds no signal any judge can use


class JudgeWarning(UserWarning):
    """A clip could not be judged and got the judge's floor score."""


@dataclass
class Scores:
    """What a judge returns.

    per_clip: score name -> one float per clip, in input order.
    mean: score name -> the batch mean (floors included; NaN scores left out).
    texts: name -> one string per clip, for judges that produce text (ASR: ``transcript``).
    notes: why each unjudged clip got the floor, e.g. ``clip 3: empty (0 samples)``.
    """

    per_clip: dict[str, list[float]]
    mean: dict[str, float]
    texts: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def flat(self, prefix: str = "") -> dict[str, float]:
        """The means as one flat dict, e.g. ``{"judge/wer": 0.2}`` for logging."""
        return {f"{prefix}{k}": v for k, v in self.mean.items()}


@dataclass
class Batch:
    """The judge's view of a batch, at its rate. ``wavs[i]`` is a float32 [T] array, or None when clip
    ``i`` could not be judged; ``references[i]`` likewise (None also where no reference was given).
    A judge that produces text puts one string per clip in ``outputs`` (it becomes ``Scores.texts``)."""

    wavs: list[np.ndarray | None]
    texts: list[str] | None = None
    references: list[np.ndarray | None] | None = None
    speakers: list[str] | None = None
    outputs: dict[str, list[str]] = field(default_factory=dict)

    @property
    def valid(self) -> list[int]:
        return [i for i, w in enumerate(self.wavs) if w is not None]


class Judge(ABC):
    """Base of every judge. Subclasses set the class attributes and implement ``_score``."""

    name: ClassVar[str]
    sample_rate: ClassVar[int] = 16000
    min_seconds: ClassVar[float] = 0.1
    needs_texts: ClassVar[bool] = False
    needs_references: ClassVar[bool] = False
    floor: ClassVar[dict[str, float]]  # the score of a clip that cannot be judged

    def score(
        self,
        clips: Sequence[Audio],
        texts: Sequence[str] | None = None,
        references: Sequence[Audio] | None = None,
        speakers: Sequence[str] | None = None,
    ) -> Scores:
        """Score ``clips`` (each ``Audio``: ``wav [1, T]`` at its own rate).

        Args:
            texts: what each clip should say (judges with ``needs_texts``).
            references: one clip each to compare against (``needs_references``): the input of a
                codec round trip, or the speaker prompt of a TTS sample.
            speakers: one speaker id per clip, so a judge can tell other speakers' references apart.
        """
        clips = list(clips)
        texts = self._check_list("texts", texts, len(clips), self.needs_texts)
        refs = self._check_list("references", references, len(clips), self.needs_references)
        speakers = self._check_list("speakers", speakers, len(clips), False)
        notes: list[str] = []
        wavs = [self._prepare(clip, f"clip {i}", notes) for i, clip in enumerate(clips)]
        ref_wavs = None
        if refs is not None:
            ref_wavs = [self._prepare(ref, f"reference {i}", notes) for i, ref in enumerate(refs)]
        batch = Batch(wavs, list(texts) if texts is not None else None, ref_wavs, speakers)
        per_clip = {k: [v] * len(clips) for k, v in self.floor.items()}
        for i, scores in self._score(batch, notes).items():
            for k, v in scores.items():
                per_clip[k][i] = float(v)
        for note in notes:
            warnings.warn(f"{self.name} judge: {note}", JudgeWarning, stacklevel=2)
        return Scores(per_clip, self._mean(per_clip, batch), texts=batch.outputs, notes=notes)

    @abstractmethod
    def _score(self, batch: Batch, notes: list[str]) -> dict[int, dict[str, float]]:
        """Scores of the clips that can be judged, by index; clips left out keep ``floor``. Append
        to ``notes`` for any further clip the judge gives up on (e.g. no speech found)."""

    def _mean(self, per_clip: dict[str, list[float]], batch: Batch) -> dict[str, float]:
        return {k: _nanmean(v) for k, v in per_clip.items()}

    def _prepare(self, clip: Audio, what: str, notes: list[str]) -> np.ndarray | None:
        """``clip`` as float32 [T] at ``sample_rate``, or None (with a note) when it cannot be judged."""
        if not isinstance(clip, Audio):
            raise TypeError(
                f"{self.name} judge: {what} is a {type(clip).__name__}; pass audiolm.tasks.inference.Audio"
                f"(wav [1, T], sample_rate)"
            )
        reason = clip_problem(clip.wav, clip.sample_rate, self.min_seconds)
        if reason is not None:
            notes.append(f"{what}: {reason}")
            return None
        wav = resample(clip.wav.detach().float().cpu(), clip.sample_rate, self.sample_rate)
        return wav.reshape(-1).clamp(-1, 1).numpy().astype(np.float32)

    def _check_list(self, what: str, items: Sequence | None, n: int, required: bool) -> list | None:
        if items is None:
            if required:
                raise ValueError(f"the {self.name} judge needs {what}: pass {what}= with one per clip")
            return None
        items = list(items)
        if len(items) != n:
            raise ValueError(f"{self.name} judge: {len(items)} {what} for {n} clips; pass one per clip")
        return items


def clip_problem(wav: torch.Tensor, sample_rate: int, min_seconds: float) -> str | None:
    """Why ``wav`` cannot be judged (empty, NaN/Inf, too short, silent), or None when it can."""
    n = wav.shape[-1]
    if n == 0:
        return "empty (0 samples)"
    if not torch.isfinite(wav).all():
        return f"contains NaN or Inf ({int((~torch.isfinite(wav)).sum())} of {n} samples)"
    if n < min_seconds * sample_rate:
        return f"too short ({n / sample_rate:.3f} s < {min_seconds} s)"
    if float(wav.abs().max()) < SILENT_PEAK:
        return f"silent (peak {float(wav.abs().max()):.1e} < {SILENT_PEAK:.0e})"
    return None


def to_audio(wav: np.ndarray | torch.Tensor, sample_rate: int) -> Audio:
    """A [T] or [1, T] waveform (numpy or torch) as ``Audio``."""
    wav = torch.as_tensor(np.asarray(wav, dtype=np.float32) if isinstance(wav, np.ndarray) else wav).float()
    return Audio(wav.reshape(1, -1), sample_rate)


def _nanmean(values: list[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return float(np.mean(kept)) if kept else math.nan
