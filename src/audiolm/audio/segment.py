"""Cut a stream of mono blocks into segments, and measure how much of each segment is silence.

Three ways to cut (``split`` in the prepare options):

- ``fixed``: consecutive windows of exactly ``max_seconds``; the tail is a shorter segment.
- ``silence``: cut in pauses of at least ``min_silence_seconds`` once a segment is ``min_seconds``
  long, keeping half a pause of silence at each end; a segment that reaches ``max_seconds`` is cut at
  its last silent frame after ``min_seconds`` (or hard, when there is none). Leading silence and the
  rest of long pauses are left out.
- ``whole``: the stream is one segment (a transcribed utterance: its text belongs to all of it).

Silence is energy-based: a frame of ``FRAME_SECONDS`` is silent when its RMS level is below
``threshold_db`` (dBFS). Only the segment being built is held in memory, never the stream.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

FRAME_SECONDS = 0.03


@dataclass
class Segment:
    start: float  # seconds from the start of the stream
    samples: np.ndarray  # mono float32 [n]
    voiced_share: float  # fraction of its frames above the silence threshold
    rate: int

    @property
    def duration(self) -> float:
        return len(self.samples) / self.rate


def frame_length(rate: int) -> int:
    return max(int(round(FRAME_SECONDS * rate)), 1)


def voiced_frames(x: np.ndarray, frame: int, threshold_db: float) -> np.ndarray:
    """One bool per frame of ``x`` (a last partial frame included): RMS level >= ``threshold_db``."""
    n = -(-len(x) // frame)
    padded = np.zeros(n * frame, np.float64)
    padded[: len(x)] = x
    power = (padded.reshape(n, frame) ** 2).sum(axis=1) / np.minimum(frame, len(x) - np.arange(n) * frame)
    with np.errstate(divide="ignore"):
        return 10 * np.log10(power) >= threshold_db


@dataclass(frozen=True)
class Cutter:
    """How to cut: the rule, lengths in seconds, and the silence threshold (dBFS) at sample ``rate``."""

    rate: int
    threshold_db: float
    max_seconds: float
    min_seconds: float = 1.0
    min_silence_seconds: float = 0.3

    def segment(self, start: int, x: np.ndarray) -> Segment:
        flags = voiced_frames(x, frame_length(self.rate), self.threshold_db)
        return Segment(start / self.rate, x, float(flags.mean()) if len(flags) else 0.0, self.rate)

    def fixed(self, blocks: Iterable[np.ndarray]) -> Iterator[Segment]:
        window = max(int(round(self.max_seconds * self.rate)), 1)
        buf: list[np.ndarray] = []
        held = start = 0
        for block in blocks:
            buf.append(block)
            held += len(block)
            if held >= window:
                x = np.concatenate(buf)
                for i in range(0, len(x) - window + 1, window):
                    yield self.segment(start, x[i : i + window])
                    start += window
                rest = x[len(x) - len(x) % window :].copy()  # not a view: the big buffer can go
                buf, held = [rest], len(rest)
        if held:
            yield self.segment(start, np.concatenate(buf))

    def whole(self, blocks: Iterable[np.ndarray]) -> Iterator[Segment]:
        x = np.concatenate([np.zeros(0, np.float32), *blocks])
        if len(x):
            yield self.segment(0, x)

    def silence(self, blocks: Iterable[np.ndarray]) -> Iterator[Segment]:
        frame = frame_length(self.rate)
        min_frames = max(int(self.min_seconds / FRAME_SECONDS), 1)
        max_frames = max(int(self.max_seconds / FRAME_SECONDS), min_frames)
        gap = max(int(round(self.min_silence_seconds / FRAME_SECONDS)), 1)
        pad = gap // 2
        lead: deque[tuple[np.ndarray, bool]] = deque(maxlen=pad or 1)  # silence before the next segment
        cur: list[tuple[np.ndarray, bool]] = []
        cur_start = quiet = 0  # quiet: length of the silent run that ends ``cur``

        def emit(n: int) -> Segment:
            x = np.concatenate([f for f, _ in cur[:n]])
            return Segment(cur_start * frame / self.rate, x, sum(v for _, v in cur[:n]) / n, self.rate)

        for index, (f, voiced) in enumerate(_frames(blocks, frame, self.threshold_db)):
            if not cur:
                if voiced:
                    cur, cur_start, quiet = [*lead, (f, voiced)], index - len(lead), 0
                    lead.clear()
                elif pad:
                    lead.append((f, voiced))
            else:
                cur.append((f, voiced))
                quiet = 0 if voiced else quiet + 1
                if quiet == gap and len(cur) - quiet >= min_frames:
                    keep = len(cur) - quiet + pad
                    yield emit(keep)
                    lead.extend(cur[keep:])
                    cur = []
                elif len(cur) >= max_frames:
                    silent = [i for i in range(min_frames, len(cur)) if not cur[i][1]]
                    keep = silent[-1] + 1 if silent else len(cur)
                    yield emit(keep)
                    cur, cur_start, quiet = cur[keep:], cur_start + keep, 0  # what is left is all voiced
        if cur:
            yield emit(max(len(cur) - max(quiet - pad, 0), 1))

    def rule(self, name: str) -> Callable[[Iterable[np.ndarray]], Iterator[Segment]]:
        return {"fixed": self.fixed, "silence": self.silence, "whole": self.whole}[name]


def _frames(blocks: Iterable[np.ndarray], frame: int, threshold_db: float) -> Iterator[tuple[np.ndarray, bool]]:
    """Whole frames of the stream with their voiced flag; a last partial frame comes out as it is."""
    carry = np.zeros(0, np.float32)
    for block in blocks:
        x = np.concatenate([carry, block])
        n = len(x) // frame
        flags = voiced_frames(x[: n * frame], frame, threshold_db) if n else []
        for i in range(n):
            yield x[i * frame : (i + 1) * frame], bool(flags[i])
        carry = x[n * frame :]
    if len(carry):
        yield carry, bool(voiced_frames(carry, len(carry), threshold_db)[0])
