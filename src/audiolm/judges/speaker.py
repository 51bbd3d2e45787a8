"""Speaker similarity: each clip against its own prompt and against the other speakers' prompts.

Embeddings come from resemblyzer (its GE2E weights ship in the wheel), or from a transformers x-vector
folder when one is given (``audiolm.metrics.tts.SpeakerEmbedder``).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from audiolm.judges.base import Batch, Judge


class Resemblyzer:
    """resemblyzer's VoiceEncoder: float32 [T] at 16 kHz -> an L2-normalised [256] embedding."""

    sample_rate = 16000

    def __init__(self, device: str = "cpu"):
        from resemblyzer import VoiceEncoder, preprocess_wav

        self.encoder = VoiceEncoder(device=device, verbose=False)
        self._preprocess = preprocess_wav

    def __call__(self, wav: np.ndarray) -> np.ndarray:
        trimmed = self._preprocess(wav)  # volume-normalised, long pauses cut (webrtcvad)
        # One thread: on a busy 2-core machine torch's multi-threaded LSTM took 6.7 s for what one
        # thread does in 0.03 s (a [3, 160, 40] batch), and a batch this small gains nothing from more.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return self.encoder.embed_utterance(trimmed if len(trimmed) >= self.sample_rate // 10 else wav)
        finally:
            torch.set_num_threads(threads)


class XVector:
    """A transformers x-vector model folder (e.g. a saved ``microsoft/wavlm-base-plus-sv``)."""

    sample_rate = 16000

    def __init__(self, path: str, device: str = "cpu", config_key: str = "eval.speaker_model"):
        from audiolm.metrics.tts import SpeakerEmbedder

        self.embedder = SpeakerEmbedder(path, device, config_key)

    def __call__(self, wav: np.ndarray) -> np.ndarray:
        emb = self.embedder(torch.from_numpy(wav), self.sample_rate).numpy()
        return emb / max(float(np.linalg.norm(emb)), 1e-12)


class SpeakerJudge(Judge):
    """``sim_own``: cosine of a clip's speaker embedding with its own prompt's (``references[i]``);
    ``sim_other``: the mean cosine with the prompts of other speakers in the batch (``speakers`` tells
    them apart; without it every other clip's prompt counts as another speaker); ``sim_margin``: the
    difference, > 0 when the clip sounds more like its own prompt than like the others.

    A clip or prompt that cannot be judged scores 0 on all three. With one speaker only, ``sim_other``
    and ``sim_margin`` are NaN (left out of the mean) and a note says so.

    Args:
        xvector_path: a transformers x-vector folder; None uses resemblyzer.
        device: where the embedder runs.
    """

    name = "speaker"
    sample_rate = 16000
    min_seconds = 0.25
    needs_references = True
    floor = {"sim_own": 0.0, "sim_other": 0.0, "sim_margin": 0.0}

    def __init__(self, xvector_path: str | None = None, device: str = "cpu"):
        self.embed = XVector(xvector_path, device) if xvector_path else Resemblyzer(device)

    def _score(self, batch: Batch, notes: list[str]) -> dict[int, dict[str, float]]:
        refs = {j: self.embed(r) for j, r in enumerate(batch.references) if r is not None}
        speakers = batch.speakers or [str(i) for i in range(len(batch.wavs))]
        out, lonely = {}, []
        for i in batch.valid:
            if i not in refs:
                continue
            emb = self.embed(batch.wavs[i])
            own = float(emb @ refs[i])
            others = [float(emb @ e) for j, e in refs.items() if speakers[j] != speakers[i]]
            other = float(np.mean(others)) if others else math.nan
            if not others:
                lonely.append(i)
            out[i] = {"sim_own": own, "sim_other": other, "sim_margin": own - other}
        if lonely:
            notes.append(f"clips {lonely}: no other speaker's prompt in the batch, so sim_other/sim_margin are NaN")
        return out
