"""Intelligibility: WER/CER of an ASR transcript against the text each clip should say.

Build it with ``ASRJudge.build(lm_texts, whisper_checkpoint)``: an openai-whisper ``.pt`` when one is
given (preferred), else pocketsphinx with a domain LM from ``lm_texts`` (see ``judges.sphinx``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from audiolm.judges.base import Batch, Judge, Scores
from audiolm.metrics.tts import error_rates, normalize_text


class WhisperASR:
    """``audiolm.text.transcribe.WhisperTranscriber`` on float32 [T] at 16 kHz."""

    sample_rate = 16000

    def __init__(self, checkpoint: str, language: str | None = "en", device: str = "cpu", config_key: str = ""):
        from audiolm.text.transcribe import WhisperTranscriber

        self.transcriber = WhisperTranscriber(checkpoint, language, device, config_key or "whisper_checkpoint")

    def __call__(self, wav: np.ndarray) -> str:
        return self.transcriber(torch.from_numpy(wav), self.sample_rate)


class ASRJudge(Judge):
    """``wer`` and ``cer`` per clip, against ``texts``; the transcripts in ``scores.texts["transcript"]``.

    The means are corpus rates (edits over all reference words / characters), not averages of
    per-clip rates, so long sentences weigh more. A clip that cannot be judged is transcribed as ""
    (every word deleted: wer 1, cer 1).

    Args:
        transcribe: float32 [T] at 16 kHz -> text (``SphinxTranscriber`` or ``WhisperASR``).
        engine: its name, e.g. ``pocketsphinx`` or ``whisper``, for reports.
    """

    name = "asr"
    sample_rate = 16000
    min_seconds = 0.1
    needs_texts = True
    floor = {"wer": 1.0, "cer": 1.0}

    def __init__(self, transcribe: Callable[[np.ndarray], str], engine: str):
        self.transcribe, self.engine = transcribe, engine

    @classmethod
    def build(
        cls,
        lm_texts: Sequence[str] | None,
        whisper_checkpoint: str | None = None,
        device: str = "cpu",
        config_key: str = "",
    ) -> ASRJudge:
        """Whisper from ``whisper_checkpoint`` when given; else pocketsphinx with an LM built from
        ``lm_texts`` (the training split's texts, never the held-out ones; None: the general LM)."""
        if whisper_checkpoint:
            return cls(WhisperASR(whisper_checkpoint, device=device, config_key=config_key), "whisper")
        from audiolm.judges.sphinx import SphinxTranscriber

        return cls(SphinxTranscriber(lm_texts), "pocketsphinx")

    def score(self, clips, texts=None, references=None, speakers=None) -> Scores:
        empty = [i for i, t in enumerate(texts or []) if not normalize_text(t)]
        if empty:
            raise ValueError(f"ASR judge: texts {empty} are empty after normalisation; give each clip its words")
        return super().score(clips, texts, references, speakers)

    def _score(self, batch: Batch, notes: list[str]) -> dict[int, dict[str, float]]:
        hyps = batch.outputs["transcript"] = ["" if w is None else self.transcribe(w) for w in batch.wavs]
        return {i: error_rates([hyps[i]], [batch.texts[i]]) for i in batch.valid}

    def _mean(self, per_clip: dict[str, list[float]], batch: Batch) -> dict[str, float]:
        return error_rates(batch.outputs["transcript"], batch.texts)
