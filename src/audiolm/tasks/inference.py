"""The one inference contract of every task family: a typed request in, a typed result out.

    AudioLM.generate(ContinueRequest)   -> AudioResult   unconditional audio, or a prompt continued
    TTS model .generate(SpeechRequest)  -> AudioResult   text (+ a reference voice) -> speech
    Captioner.generate(CaptionRequest)  -> TextResult    audio -> one caption per clip

eval.py, ``cli.synthesize``, the notebooks and the web UI all call ``model.generate(request)``;
``model.Request`` names the request class a model answers, so a caller can build one without
knowing the family. Audio goes in and out as ``Audio`` (a mono waveform and its rate); where a
caller already holds codec codes (eval prompts from the token store), a request takes them too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch


@dataclass(frozen=True)
class Audio:
    """A mono waveform ``wav: [1, T]`` (float) at ``sample_rate``."""

    wav: torch.Tensor
    sample_rate: int

    def __post_init__(self) -> None:
        if self.wav.dim() != 2 or self.wav.shape[0] != 1:
            raise ValueError(f"Audio.wav must be [1, T] (mono), got {tuple(self.wav.shape)}")

    @classmethod
    def load(cls, path: str | Path, sample_rate: int) -> Audio:
        """Any file soundfile reads, downmixed to mono and resampled to ``sample_rate``."""
        from audiolm.audio.io import load_audio

        return cls(load_audio(Path(path), sample_rate), sample_rate)

    def save(self, path: str | Path) -> Path:
        from audiolm.audio.io import save_audio

        save_audio(Path(path), self.wav.detach().cpu(), self.sample_rate)
        return Path(path)

    @property
    def seconds(self) -> float:
        return self.wav.shape[-1] / self.sample_rate


@dataclass
class ContinueRequest:
    """Audio LM: ``n`` clips of ``seconds`` each (the prompt included), generated from nothing, or each
    continuing ``prompt``: an ``Audio`` clip, or codes ``[Q, Fp]`` / a batch ``[B, Q, Fp]`` (one result each)."""

    seconds: float = 4.0
    prompt: Audio | torch.Tensor | None = None
    n: int = 1
    seed: int | None = 0
    use_cache: bool = True
    progress: bool = False


@dataclass
class SpeechRequest:
    """TTS: ``text`` spoken in the voice of ``reference`` (an ``Audio`` clip, or prompt codes ``[Q, Fp]``;
    None lets the model pick a voice). Long text is split into sentences of at most ``max_chars``;
    ``rolling_context`` prompts each sentence with the end of the previous one. ``language`` is an
    espeak-ng code (default: the one the model was trained on)."""

    text: str
    reference: Audio | torch.Tensor | None = None
    max_seconds: float = 20.0
    max_chars: int = 200
    rolling_context: bool = False
    language: str | None = None
    seed: int | None = 0
    use_cache: bool = True


@dataclass
class CaptionRequest:
    """Captioner: one caption per clip. ``settings`` are the decoding keys (``max_new_tokens``,
    ``num_beams``, ``do_sample``, ``temperature``, ``top_k``, ``top_p``, ``repetition_penalty``)."""

    audio: list[Audio]
    settings: dict = field(default_factory=dict)
    seed: int | None = 0


@dataclass
class AudioResult:
    """One ``Audio`` per rendition, with its codes ``[Q, F]``; ``prompt_seconds`` marks where a continued
    prompt ends in each clip (0 without one)."""

    audio: list[Audio]
    codes: list[torch.Tensor]
    prompt_seconds: float = 0.0


@dataclass
class TextResult:
    texts: list[str]


def generator_for(seed: int | None, device: torch.device | str) -> torch.Generator | None:
    """A seeded generator on ``device`` (None: draws from the global one)."""
    return None if seed is None else torch.Generator(device=device).manual_seed(seed)
