"""TTS scores: intelligibility (WER/CER of an ASR transcript against the text) and speaker similarity
(cosine between speaker embeddings of the synthesised speech and the prompt)."""

from __future__ import annotations

import re
from pathlib import Path

import torch
import torchaudio.functional as AF
from torchmetrics.functional.text import char_error_rate, word_error_rate

from audiolm.errors import MissingFileError

_NOT_WORD = re.compile(r"[^\w\s']+")


def normalize_text(text: str) -> str:
    """Lower case, punctuation removed, single spaces: what WER/CER compare."""
    return " ".join(_NOT_WORD.sub(" ", text.lower()).split())


def error_rates(hypotheses: list[str], references: list[str]) -> dict[str, float]:
    """Corpus WER and CER (edit operations over reference words / characters), after ``normalize_text``."""
    hyps = [normalize_text(h) for h in hypotheses]
    refs = [normalize_text(r) for r in references]
    return {"wer": float(word_error_rate(hyps, refs)), "cer": float(char_error_rate(hyps, refs))}


class SpeakerEmbedder:
    """A transformers x-vector model (e.g. ``microsoft/wavlm-base-plus-sv`` saved locally) -> embeddings.

    Args:
        path: folder with the model's config, weights and feature-extractor config.
        device: where it runs.
    """

    def __init__(self, path: str, device: str = "cpu", config_key: str = "eval.speaker_model"):
        from transformers import AutoFeatureExtractor, AutoModelForAudioXVector

        if not Path(path).is_dir():
            raise MissingFileError(
                f"speaker model folder not found: {path} ({config_key}); give a local folder "
                f"of a transformers x-vector model (config.json, weights, preprocessor_config.json)"
            )
        self.extractor = AutoFeatureExtractor.from_pretrained(path)
        self.model = AutoModelForAudioXVector.from_pretrained(path).to(device).eval()
        self.device = device

    @torch.inference_mode()
    def __call__(self, wav: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """wav: [1, T] or [T] -> embedding [D]."""
        rate = self.extractor.sampling_rate
        wav = wav.reshape(-1).float().cpu()
        if sample_rate != rate:
            wav = AF.resample(wav, sample_rate, rate)
        inputs = self.extractor(wav.numpy(), sampling_rate=rate, return_tensors="pt")
        return self.model(**{k: v.to(self.device) for k, v in inputs.items()}).embeddings[0].cpu()

    def similarity(self, a: torch.Tensor, b: torch.Tensor, sample_rate: int) -> float:
        """Cosine similarity of the two clips' speaker embeddings, in [-1, 1]."""
        return float(torch.nn.functional.cosine_similarity(self(a, sample_rate), self(b, sample_rate), dim=0))
