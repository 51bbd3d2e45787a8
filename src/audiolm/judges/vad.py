"""Speech fraction: the share of each clip that silero-vad (ONNX weights in its wheel) hears as speech."""

from __future__ import annotations

import numpy as np
import torch

from audiolm.judges.base import Batch, Judge


def load_silero():
    """silero-vad's ONNX model. Importing silero_vad calls ``torch.set_num_threads(1)`` for the whole
    process, which would slow training to one core; the thread count is put back."""
    threads = torch.get_num_threads()
    try:
        from silero_vad import get_speech_timestamps, load_silero_vad
    finally:
        torch.set_num_threads(threads)
    return load_silero_vad(onnx=True), get_speech_timestamps


class SileroVad:
    """Speech fraction of a float32 [T] array at 16 kHz (the model runs at 8 or 16 kHz only)."""

    sample_rate = 16000

    def __init__(self, threshold: float = 0.5):
        self.model, self._timestamps = load_silero()
        self.threshold = threshold

    def fraction(self, wav: np.ndarray) -> float:
        if len(wav) < 512:  # one silero window; shorter input raises inside silero
            return 0.0
        spans = self._timestamps(
            torch.from_numpy(wav), self.model, threshold=self.threshold, sampling_rate=self.sample_rate, speech_pad_ms=0
        )
        return min(1.0, sum(s["end"] - s["start"] for s in spans) / len(wav))


class SpeechFractionJudge(Judge):
    """``speech_fraction``: seconds of speech / seconds of clip, in [0, 1]. Silence scores 0.

    Args:
        threshold: silero's speech probability threshold.
        vad: a ``SileroVad`` to share with other judges (one is loaded when None).
    """

    name = "speech_fraction"
    sample_rate = SileroVad.sample_rate
    min_seconds = 0.05
    floor = {"speech_fraction": 0.0}

    def __init__(self, threshold: float = 0.5, vad: SileroVad | None = None):
        self.vad = vad or SileroVad(threshold)

    def _score(self, batch: Batch, notes: list[str]) -> dict[int, dict[str, float]]:
        return {i: {"speech_fraction": self.vad.fraction(batch.wavs[i])} for i in batch.valid}
