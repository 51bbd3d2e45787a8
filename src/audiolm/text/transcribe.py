"""Transcripts with openai-whisper from a local checkpoint (never downloaded).

Used to fill in missing transcripts when a TTS corpus is prepared, and to score synthesised speech
(WER/CER) at evaluation. ``checkpoint`` is an openai-whisper ``.pt`` file (``dims`` and
``model_state_dict``), e.g. ``small.pt`` as openai-whisper caches it under ~/.cache/whisper.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from audiolm.errors import ConfigError, MissingFileError, MissingToolError

log = logging.getLogger(__name__)
SAMPLE_RATE = 16000  # whisper's input rate


class WhisperTranscriber:
    """Args:
    checkpoint: path of an openai-whisper ``.pt`` checkpoint.
    language: language code for Whisper (``en``, ``fr``...); None lets Whisper detect it.
    device: where the model runs.
    config_key: the config key that sets ``checkpoint``, named in errors.
    """

    def __init__(
        self,
        checkpoint: str | None,
        language: str | None = None,
        device: str = "cpu",
        config_key: str = "whisper_checkpoint",
    ):
        if not checkpoint:
            raise ConfigError(
                f"a Whisper checkpoint is needed: set {config_key}=/path/to/model.pt (an openai-whisper "
                f".pt file such as small.pt; nothing is downloaded)"
            )
        path = Path(checkpoint)
        if not path.is_file():
            raise MissingFileError(
                f"Whisper checkpoint not found: {path} ({config_key}); give the path of an openai-whisper .pt file"
            )
        try:
            import whisper
        except ImportError:
            raise MissingToolError("openai-whisper is not installed: pip install openai-whisper==20250625") from None
        self.language, self.device = language, device
        self.model = whisper.load_model(str(path), device=device)
        self._whisper = whisper

    @torch.inference_mode()
    def __call__(self, wav: torch.Tensor, sample_rate: int) -> str:
        """wav: [1, T] or [T] mono -> the transcript (stripped)."""
        import torchaudio.functional as AF

        wav = wav.reshape(-1).float().cpu()
        if sample_rate != SAMPLE_RATE:
            wav = AF.resample(wav, sample_rate, SAMPLE_RATE)
        result = self._whisper.transcribe(
            self.model,
            wav.numpy(),
            language=self.language,
            temperature=0.0,
            condition_on_previous_text=False,
            fp16=False,
            verbose=None,
        )
        return result["text"].strip()
