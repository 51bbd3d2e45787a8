"""The tabs' work, in plain Python: ``Studio`` holds the page's settings, the resident model and the stop
flags, and has one method per tab. The Gradio page (``app``) only lays out widgets around them, and
the tests call them directly.

Each method takes the widgets' values and returns what the widgets show: audio as ``(rate, int16
samples)``, images as RGB arrays, text as markdown. What a user got wrong raises ``AudiolmError``
(or the ``ValueError`` a checked setting raises) with the one-line message the CLI prints.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from audiolm.errors import AudiolmError
from audiolm.tasks.inference import Audio, CaptionRequest, ContinueRequest, SpeechRequest
from audiolm.ui import codecs, runs
from audiolm.ui.figures import spectrogram
from audiolm.ui.jobs import Jobs
from audiolm.ui.models import ModelSlot, run_sampling, steps_of, use_sampler, use_steps
from audiolm.ui.uploads import read_upload

Progress = Callable[..., Any]  # gr.Progress: progress(fraction, desc=...)
TTS_JUDGES = ("speech_fraction", "dnsmos", "asr")  # + speaker similarity when a reference is given
SHOWN_SCORES = ("speech_fraction", "dnsmos_ovrl", "dnsmos_p808", "sim_own", "wer")
CAPTION_RATE = 16_000  # Whisper's: the captioner would resample any other rate to it


def _no_progress(*_: Any, **__: Any) -> None:
    return None


@dataclass(frozen=True)
class Settings:
    """What the server was started with (``python -m audiolm.cli.webui --help``)."""

    runs_root: Path = Path("logs")
    max_upload_mb: float = 50.0
    max_clip_seconds: float = 60.0
    concurrency: int = 1


@dataclass
class Loaded:
    """What the Model tab shows after loading, and the widget defaults the run brings."""

    info: str
    sampling: dict[str, float]
    steps: int | None


def playable(audio: Audio) -> tuple[int, np.ndarray]:
    """``Audio`` -> what an output audio widget plays: (rate, int16 samples)."""
    wav = audio.wav.detach().float().cpu()[0].clamp(-1, 1)
    return audio.sample_rate, (wav * 32767).round().short().numpy()


class Studio:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.slot = ModelSlot()
        self.jobs = Jobs()
        self._work = tempfile.TemporaryDirectory(prefix="audiolm-ui-")  # codec round trips, served from here
        self.work_dir = Path(self._work.name)

    # -- Model tab -------------------------------------------------------------------------------
    def runs(self) -> list[str]:
        return runs.list_runs(self.settings.runs_root)

    def load(self, choice: str, device: str, progress: Progress = _no_progress) -> Loaded:
        """Load the run ``choice`` (relative to the runs root) on ``device``; cached while it stays chosen."""
        path = runs.resolve_choice(self.settings.runs_root, choice)
        progress(0.1, desc=f"loading {choice}")
        model = self.slot.load(path, device, prepare=self.jobs.watch)
        return Loaded(runs.describe(choice, path, model, device), run_sampling(model), steps_of(model))

    # -- Text to speech --------------------------------------------------------------------------
    def speak(
        self,
        text: str,
        reference: str | None,
        sampling: dict[str, float],
        max_seconds: float,
        steps: int | None,
        rolling_context: bool,
        judge: bool,
        seed: int = 0,
        session: str = "",
        progress: Progress = _no_progress,
    ) -> tuple[tuple[int, np.ndarray], np.ndarray, str]:
        """``text`` in the voice of the ``reference`` file (None: the model's choice) -> audio, spectrogram,
        judges' scores."""
        with self.jobs.running(session):
            with self.slot.use(SpeechRequest) as model:
                voice = None
                if reference:
                    voice = read_upload(reference, "the reference voice", model.codec.sample_rate, self.max_seconds)
                use_sampler(model, sampling)
                if steps is not None and steps_of(model) is not None:
                    use_steps(model, int(steps))
                progress(0.2, desc="speaking")
                request = SpeechRequest(
                    text, voice, max_seconds=max_seconds, rolling_context=rolling_context, seed=int(seed)
                )
                spoken = model.generate(request).audio[0]
            scores = self._judge_speech(spoken, text, voice, progress) if judge else "judges off"
        return playable(spoken), spectrogram(spoken, "generated speech"), scores

    def _judge_speech(self, spoken: Audio, text: str, voice: Audio | None, progress: Progress) -> str:
        from audiolm.judges.base import JudgeWarning
        from audiolm.judges.suite import build_judges

        progress(0.8, desc="judging")
        names = [*TTS_JUDGES, *(["speaker"] if voice is not None else [])]
        scores, notes = {}, []
        for judge in build_judges(names).values():
            self.jobs.check()
            with warnings.catch_warnings():  # the page shows the judges' notes
                warnings.simplefilter("ignore", JudgeWarning)
                result = judge.score([spoken], texts=[text], references=None if voice is None else [voice])
            scores.update({k: v[0] for k, v in result.per_clip.items()})
            scores.update({k: v[0] for k, v in result.texts.items()})
            # One clip has no other speaker to compare with: sim_other is not shown, so neither is its note.
            notes += [note for note in result.notes if "sim_other" not in note]
        lines = ["| judge | score |", "|---|---|"]
        lines += [f"| {k} | {scores[k]:.3f} |" for k in SHOWN_SCORES if k in scores]
        if "transcript" in scores:
            lines.append(f"\nthe ASR heard: “{scores['transcript']}”")
        return "\n".join(lines + [f"\n- {note}" for note in notes])

    # -- Continue audio --------------------------------------------------------------------------
    def continue_audio(
        self,
        prompt: str | None,
        seconds: float,
        sampling: dict[str, float],
        seed: int = 0,
        session: str = "",
        progress: Progress = _no_progress,
    ) -> tuple[tuple[int, np.ndarray], np.ndarray, str]:
        """``seconds`` more after the ``prompt`` file (None: unconditional) -> audio, spectrogram with the
        prompt boundary, one line on what was generated."""
        with self.jobs.running(session), self.slot.use(ContinueRequest) as model:
            clip = None
            if prompt:
                clip = read_upload(prompt, "the prompt", model.codec.sample_rate, self.max_seconds)
            use_sampler(model, sampling)
            total = seconds + (clip.seconds if clip is not None else 0.0)
            progress(0.1, desc="generating")
            result = model.generate(ContinueRequest(seconds=total, prompt=clip, seed=int(seed), progress=True))
        audio = result.audio[0]
        what = f"{result.prompt_seconds:.2f} s of prompt + " if clip is not None else "unconditional: "
        summary = f"{what}{audio.seconds - result.prompt_seconds:.2f} s generated"
        return playable(audio), spectrogram(audio, "continuation", result.prompt_seconds), summary

    # -- Caption ---------------------------------------------------------------------------------
    def caption(
        self,
        clip: str | None,
        num_beams: int,
        max_new_tokens: int,
        session: str = "",
        progress: Progress = _no_progress,
    ) -> str:
        """One caption of the uploaded clip; ``num_beams`` 1 is greedy."""
        if not clip:
            raise AudiolmError("no clip to caption: upload one")
        with self.jobs.running(session), self.slot.use(CaptionRequest) as model:
            audio = read_upload(clip, "the clip", CAPTION_RATE, self.max_seconds)
            progress(0.2, desc="captioning")
            settings = {"num_beams": int(num_beams), "max_new_tokens": int(max_new_tokens)}
            return model.generate(CaptionRequest([audio], settings)).texts[0]

    # -- Codec -----------------------------------------------------------------------------------
    def codec_round_trip(
        self,
        clip: str | None,
        codec_name: str,
        n_q: int,
        device: str,
        judge: bool,
        session: str = "",
        progress: Progress = _no_progress,
    ) -> tuple[str, str]:
        """The clip through ``codec_name`` at ``n_q`` levels -> (the decoded WAV's path, preview's table)."""
        if not clip:
            raise AudiolmError("no clip to round-trip: upload one")
        with self.jobs.running(session):
            progress(0.1, desc=f"building {codec_name}")
            notes: list[str] = []
            if codec_name == codecs.RUN_CODEC:
                codec = self._run_codec()
                device = str(codec.device)  # where the loaded model keeps it
            else:
                codec = codecs.build_codec(codec_name)
            audio = read_upload(clip, "the clip", codec.sample_rate, self.max_seconds)
            if codec.needs_fit and codec_name != codecs.RUN_CODEC:
                notes.append(codecs.fit_on_clip(codec, audio.wav))
            if codec.residual and not 1 <= n_q <= codec.n_codebooks:
                raise AudiolmError(
                    f"{type(codec).__name__} has {codec.n_codebooks} levels: choose n_q in 1..{codec.n_codebooks}"
                )
            if not codec.keeps_phase:
                notes.append(f"no SI-SDR: {type(codec).__name__} rebuilds the phase; compare the log-mel distance")
            self.jobs.check()
            progress(0.4, desc="round trip")
            out = Path(tempfile.mkdtemp(dir=self.work_dir))
            return codecs.codec_round_trip(codec, Path(clip).stem, audio.wav, n_q, out, device, judge, notes)

    def _run_codec(self) -> Any:
        codec = getattr(self.slot.model, "codec", None)
        if codec is None:
            raise AudiolmError(f"{codecs.RUN_CODEC!r}: load an audio LM or TTS run in the Model tab first")
        return codec

    # -- Stop ------------------------------------------------------------------------------------
    def stop(self, session: str) -> None:
        self.jobs.stop(session)

    @property
    def max_seconds(self) -> float:
        return self.settings.max_clip_seconds
