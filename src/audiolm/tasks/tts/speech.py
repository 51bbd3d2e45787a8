"""What both TTS models share (``SpeechModel``) and what both TTS tasks share (``SpeechTask``).

    SpeechRequest (text, reference voice) --text front-end, sentence by sentence-->
        phoneme ids --generate_codes (VALL-E or parallel)--> codes [Q, F] --codec--> AudioResult

A ``SpeechModel`` holds the text front-end, the backbone and the codec; it turns a reference
recording into prompt codes (checked: silent, too short, cut to the training prompt length), guards
the maximum duration against the backbone's positions, and speaks long text sentence by sentence,
each one joined to the last with a short gap (with ``rolling_context`` the end of each spoken
sentence prompts the next). How the codes of one sentence are sampled is the subclass's
``generate_codes``. The phoneme vocabulary travels with the weights: phoneme ids mean nothing
without it.

A ``SpeechTask`` drops an item's text and prompt (``cfg_cond_dropout_p`` / ``cfg_prom_dropout_p``)
in training so that classifier-free guidance works at inference; validation drops nothing. Its
samples are held-out texts spoken in held-out voices (``tasks.tts.samples``).
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from pathlib import Path
from typing import Any

import torch

from audiolm.audio.io import resample
from audiolm.backbones.base import Backbone
from audiolm.codecs.base import AudioCodec
from audiolm.data.datamodule import TokenDataModule
from audiolm.errors import ConfigError, DataError
from audiolm.generation.sampling import Sampler
from audiolm.tasks.base import CodecModel, Samples, Task
from audiolm.tasks.inference import Audio, AudioResult, SpeechRequest, generator_for
from audiolm.tasks.tts.samples import write_tts_samples
from audiolm.text.frontend import TextFrontend
from audiolm.text.sentences import split_sentences

log = logging.getLogger(__name__)
SILENT_PEAK = 10 ** (-60 / 20)  # -60 dBFS: below this nothing a codec would keep
MIN_PROMPT_SECONDS = 1.0
GAP_SECONDS = 0.15  # silence between spoken sentences


class SpeechModel(CodecModel):
    """Args:
    backbone, codec, sampler: the run's shared parts (``sampler`` draws the generated codes).
    text: the text front-end (phonemizer language and phoneme vocabulary).
    prompt_seconds: prompt length in training, and of the null prompt when speaking without one.
    """

    Request = SpeechRequest

    def __init__(
        self,
        backbone: Backbone,
        codec: AudioCodec,
        text: TextFrontend,
        sampler: Sampler | None = None,
        prompt_seconds: float = 3.0,
    ):
        super().__init__(codec)
        if prompt_seconds <= 0:
            raise ConfigError(f"task.model.prompt_seconds must be > 0, got {prompt_seconds}")
        self.backbone, self.text = backbone, text
        self.use_sampler(sampler or Sampler())
        self.prompt_frames = self.seconds_to_frames(prompt_seconds)

    def use_sampler(self, sampler: Sampler) -> None:
        """Sample with ``sampler`` from now on (what ``sampling.*`` sets when a run is built)."""
        self.sampler = sampler

    # -- what travels with the weights ---------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        return {**super().extra_state(), "phoneme_vocab": self.text.vocab.to_json()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        super().load_extra_state(state)
        saved = state.get("phoneme_vocab")
        if saved is not None and saved != self.text.vocab.to_json():
            raise DataError(
                "the checkpoint was trained with another phoneme vocabulary than text.symbols gives now; "
                "its phoneme ids would mean other sounds. Keep the run's text settings."
            )

    # -- inference -----------------------------------------------------------------------------
    @abstractmethod
    def generate_codes(
        self,
        phonemes: list[int],
        prompt: torch.Tensor | None,
        max_frames: int,
        n_samples: int = 1,
        use_cache: bool = True,
        generator: torch.Generator | None = None,
    ) -> list[torch.Tensor]:
        """Codes [Q, F_i] for ``n_samples`` renditions of ``phonemes`` in the voice of ``prompt`` [Q, Fp]
        (None: a null prompt, the voice is the model's choice), each at most ``max_frames`` long."""

    def inputs(self, phonemes: list[int], prompt: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``generate_codes``'s arguments as tensors on the CPU (where the sequences are laid out)."""
        if not phonemes:
            raise ConfigError("no phonemes to speak")
        self.eval()
        return torch.tensor(phonemes, dtype=torch.long), None if prompt is None else prompt.long().cpu()

    def frame_budget(self, prefix_length: int, max_frames: int, positions_per_frame: int = 1) -> int:
        """The max-duration guard, lowered to what the backbone's positions allow after ``prefix_length`` ones
        (a frame takes ``positions_per_frame`` positions)."""
        limit = self.backbone.max_length
        if limit is None:
            return max_frames
        room = (limit - prefix_length) // positions_per_frame
        if room < 1:
            raise ConfigError(
                f"text and prompt take {prefix_length} positions, {type(self.backbone).__name__} "
                f"accepts {limit}; shorten the text (it is split at sentences) or the prompt"
            )
        if room < max_frames:
            log.warning(
                "max duration lowered to %d frames: %s accepts %d positions", room, type(self.backbone).__name__, limit
            )
        return min(max_frames, room)

    @torch.inference_mode()
    def encode_prompt(self, audio: Audio, name: str = "the prompt") -> torch.Tensor:
        """A reference recording -> prompt codes [Q, Fp], at most the training prompt length (its start).
        A silent clip or one shorter than a codec frame is an error; one under ``MIN_PROMPT_SECONDS``
        is used with a warning. ``name`` says which clip in messages (e.g. its file)."""
        codec = self.codec
        wav = resample(audio.wav, audio.sample_rate, codec.sample_rate)
        seconds, trained = wav.shape[-1] / codec.sample_rate, self.prompt_frames / codec.frame_rate
        if wav.shape[-1] < int(codec.sample_rate / codec.frame_rate) + 1:
            raise DataError(
                f"{name} is {seconds * 1000:.0f} ms long, shorter than one codec frame; give at least "
                f"{MIN_PROMPT_SECONDS:.0f} s (about {trained:.0f} s works best)"
            )
        peak = float(wav.abs().max())
        if peak < SILENT_PEAK:
            raise DataError(
                f"{name} is silent (peak {20 * torch.log10(torch.tensor(max(peak, 1e-12))):.0f} dBFS); "
                f"give a recording of the voice to imitate, or synthesise without a prompt"
            )
        if seconds < MIN_PROMPT_SECONDS:
            log.warning(
                "%s is only %.2f s long; the model learned from %.1f s prompts, so the voice may follow it loosely",
                name,
                seconds,
                trained,
            )
        codes = self.encode_audio(Audio(wav, codec.sample_rate))
        if codes.shape[1] > self.prompt_frames:
            log.info("prompt cut to its first %.1f s (the training prompt length)", trained)
        return codes[:, : self.prompt_frames]

    @torch.inference_mode()
    def generate(self, request: SpeechRequest) -> AudioResult:
        """The request's text spoken sentence by sentence, joined with short gaps: one ``Audio``, and the
        sentences' codes [Q, F] one after another (the gaps are in the audio only)."""
        text = self.text if request.language is None else TextFrontend(request.language, self.text.vocab.symbols)
        sentences = split_sentences(request.text, request.max_chars)
        if not sentences:
            text.phonemes(request.text)  # raises the front-end's own error for empty text
        ids = [text.ids(s) for s in sentences]  # every sentence checked before any is spoken
        prompt = request.reference
        if isinstance(prompt, Audio):
            prompt = self.encode_prompt(prompt)
        generator = generator_for(request.seed, self.device)
        max_frames = self.seconds_to_frames(request.max_seconds)
        rate = self.codec.sample_rate
        gap = torch.zeros(1, int(GAP_SECONDS * rate))
        wavs, codes = [], []
        for k, (sentence, phonemes) in enumerate(zip(sentences, ids, strict=True)):
            log.info("sentence %d/%d: %s", k + 1, len(sentences), sentence)
            spoken = self.generate_codes(
                phonemes, prompt, max_frames, use_cache=request.use_cache, generator=generator
            )[0]
            wavs += [gap, self.decode_codes(spoken).wav] if wavs else [self.decode_codes(spoken).wav]
            codes.append(spoken)
            if request.rolling_context:
                prompt = spoken[:, -self.prompt_frames :]
        return AudioResult([Audio(torch.cat(wavs, dim=-1), rate)], [torch.cat(codes, dim=-1)])


class SpeechTask(Task):
    """Args:
    model: a ``SpeechModel``; optim, lora: see ``tasks.base.Task``.
    cfg_cond_dropout_p, cfg_prom_dropout_p: chance that a training item's text / prompt is dropped.
    """

    model: SpeechModel

    def __init__(
        self,
        model: SpeechModel,
        optim: dict,
        cfg_cond_dropout_p: float = 0.1,
        cfg_prom_dropout_p: float = 0.1,
        lora: dict | None = None,
    ):
        for name, p in (("cfg_cond_dropout_p", cfg_cond_dropout_p), ("cfg_prom_dropout_p", cfg_prom_dropout_p)):
            if not 0 <= p < 1:
                raise ConfigError(f"task.{name} must be in [0, 1), got {p}")
        super().__init__(model, optim, lora)
        self.cfg_cond_dropout_p, self.cfg_prom_dropout_p = cfg_cond_dropout_p, cfg_prom_dropout_p

    def drop_masks(self, n: int, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """drop_text, drop_prompt [n] bool: drawn in training; nothing dropped in validation, so its figures
        are repeatable."""
        if not train:
            return torch.zeros(n, dtype=torch.bool), torch.zeros(n, dtype=torch.bool)
        return torch.rand(n) < self.cfg_cond_dropout_p, torch.rand(n) < self.cfg_prom_dropout_p

    def write_samples(self, datamodule: TokenDataModule, out_dir: Path, **settings: Any) -> Samples:
        """Held-out texts spoken in held-out voices, with WER/CER and speaker similarity when models are given."""
        return write_tts_samples(self.model, datamodule, Path(out_dir), **settings)
