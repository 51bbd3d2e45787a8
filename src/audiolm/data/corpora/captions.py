"""The embedded caption corpus: clips with known attributes, captioned from templates, made offline.

Three kinds of sound, each with attributes a listener (and a small model) can hear:

- **tones**: timbre (sine, square, sawtooth, triangle), pitch (low, mid, high), rhythm (held,
  slow pulses, fast pulses) and loudness (quiet, loud), synthesised band-limited in numpy;
- **noise**: colour (white, pink, brown), rhythm and loudness;
- **speech**: espeak-ng voices, by gender (man, woman), speed (slow, fast) and pitch (low, high),
  saying short sentences from the embedded speech corpus's word lists.

Each clip's caption is one of three templates per kind with its attributes filled in, e.g.
"A loud high pitched square tone pulsing quickly." Everything is seeded, so the same settings
give the same corpus; it lives in ``root/caption-embedded-<hash>/`` (``manifest.jsonl`` written
last, ``text`` = caption, ``split`` = train / val) and is reused once complete. About one clip in
ten is held out for validation, across all kinds.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from audiolm.audio.io import save_audio
from audiolm.data.caption import SAMPLE_RATE, CaptionClip, CaptionDataModule, manifest_clips
from audiolm.data.corpora.espeak import find_espeak, speak
from audiolm.data.corpora.speech import OBJECTS, SUBJECTS, VERBS
from audiolm.data.manifest import Utterance, write_manifest
from audiolm.errors import ConfigError

RECIPE_VERSION = 1
TIMBRES = ("sine", "square", "sawtooth", "triangle")
PITCHES = {"low": (110.0, 180.0), "mid": (300.0, 480.0), "high": (900.0, 1400.0)}
RHYTHMS = {"steady": 0.0, "slow": 2.0, "fast": 6.0}  # pulses per second; 0 = held
LOUDNESS = {"quiet": -34.0, "loud": -12.0}  # RMS dBFS of the sounding part
COLOURS = {"white": 0.0, "pink": 1.0, "brown": 2.0}  # power falls as 1 / f^x
GENDERS = {"man": ("en-us+m3", "en+m1"), "woman": ("en-us+f2", "en+f4")}
SPEEDS = {"slowly": 110, "quickly": 210}  # espeak-ng words per minute
VOICE_PITCHES = {"low": 15, "high": 85}
SPEECH_DB = -20.0

TEMPLATES = {
    "tone": (
        "A {loudness} {pitch} pitched {timbre} tone {tone_rhythm}.",
        "{Loudness} {timbre} wave at a {pitch} pitch, {tone_rhythm}.",
        "A {timbre} tone with a {pitch} pitch, {loudness} and {tone_rhythm}.",
    ),
    "noise": (
        "{Loudness} {colour} noise {noise_rhythm}.",
        "A {loudness} hiss of {colour} noise {noise_rhythm}.",
        "{Colour} noise, {loudness}, {noise_rhythm}.",
    ),
    "speech": (
        "A {gender} speaks {speed} in a {pitch} voice.",
        "A {pitch} voiced {gender} talking {speed}.",
        "Speech from a {gender} with a {pitch} voice, spoken {speed}.",
    ),
}
TONE_RHYTHM = {"steady": "held steadily", "slow": "pulsing slowly", "fast": "pulsing quickly"}
NOISE_RHYTHM = {"steady": "hissing steadily", "slow": "in slow bursts", "fast": "in fast bursts"}
KINDS = ("tone",) * 4 + ("noise",) * 3 + ("speech",) * 3  # i % 10 picks the kind


@dataclass(frozen=True)
class Job:
    id: str
    kind: str
    attributes: dict
    caption: str
    split: str
    seconds: float  # tones and noise; speech is as long as espeak-ng says it
    text: str = ""  # what the speech says

    @property
    def path(self) -> str:
        return f"wavs/{self.id}.wav"


def caption_for(kind: str, attributes: dict, template: int) -> str:
    words = dict(attributes)
    if kind != "speech":
        words["tone_rhythm"], words["noise_rhythm"] = TONE_RHYTHM[words["rhythm"]], NOISE_RHYTHM[words["rhythm"]]
    words.update({k.capitalize(): str(v).capitalize() for k, v in words.items()})
    return TEMPLATES[kind][template].format(**words)


def _attribute_space(kind: str) -> list[dict]:
    axes = {
        "tone": {"timbre": TIMBRES, "pitch": PITCHES, "rhythm": RHYTHMS, "loudness": LOUDNESS},
        "noise": {"colour": COLOURS, "rhythm": RHYTHMS, "loudness": LOUDNESS},
        "speech": {"gender": GENDERS, "speed": SPEEDS, "pitch": VOICE_PITCHES},
    }[kind]
    return [dict(zip(axes, values, strict=True)) for values in itertools.product(*(list(v) for v in axes.values()))]


def vocabulary_texts() -> list[str]:
    """Every caption the corpus can produce (a tokenizer for it is trained on these)."""
    return [caption_for(kind, a, t) for kind in TEMPLATES for a in _attribute_space(kind) for t in range(3)]


def plan(n_clips: int, seed: int = 0) -> list[Job]:
    if n_clips < 20:
        raise ConfigError(f"data.n_clips={n_clips} is too small: use at least 20 so every kind has train and val clips")
    rng = random.Random(seed)
    spaces = {kind: _attribute_space(kind) for kind in TEMPLATES}
    jobs = []
    for i in range(n_clips):
        kind = KINDS[i % 10]
        attributes = rng.choice(spaces[kind])
        text = ""
        if kind == "speech":
            past, _ = rng.choice(VERBS)
            text = f"{rng.choice(SUBJECTS)} {past} {rng.choice(OBJECTS)}".capitalize()
        jobs.append(
            Job(
                id=f"{kind}_{i:05d}",
                kind=kind,
                attributes=attributes,
                caption=caption_for(kind, attributes, rng.randrange(3)),
                split="val" if (i // 10) % 10 == 0 else "train",
                seconds=round(rng.uniform(1.5, 2.5), 3),
                text=text,
            )
        )
    return jobs


# --- rendering -------------------------------------------------------------------------------
def _envelope(n: int, rate: float) -> np.ndarray:
    """1 while sounding: held (``rate`` 0) or pulses of half a period; 10 ms ramps avoid clicks."""
    t = np.arange(n) / SAMPLE_RATE
    gate = np.ones(n) if rate == 0 else ((t * rate) % 1.0 < 0.5).astype(np.float64)
    ramp = int(0.01 * SAMPLE_RATE)
    kernel = np.ones(ramp) / ramp
    gate = np.convolve(gate, kernel, mode="same")
    gate[:ramp] *= np.linspace(0, 1, ramp)
    gate[-ramp:] *= np.linspace(1, 0, ramp)
    return gate


def _tone(timbre: str, f0: float, n: int) -> np.ndarray:
    """Band-limited waveforms by additive synthesis (harmonics below 7 kHz), so nothing aliases."""
    t = np.arange(n) / SAMPLE_RATE
    out = np.zeros(n)
    for k in range(1, int(7000 // f0) + 1):
        if timbre == "sine" and k > 1:
            break
        if timbre in ("square", "triangle") and k % 2 == 0:
            continue
        amp = {
            "sine": 1.0,
            "square": 1 / k,
            "sawtooth": (-1) ** (k + 1) / k,
            "triangle": (-1) ** ((k - 1) // 2) / k**2,
        }[timbre]
        out += amp * np.sin(2 * np.pi * k * f0 * t)
    return out


def _noise(colour: str, n: int, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    spectrum[1:] /= freqs[1:] ** (COLOURS[colour] / 2)
    spectrum[0] = 0
    return np.fft.irfft(spectrum, n)


def _at_level(x: np.ndarray, gate: np.ndarray, db: float) -> np.ndarray:
    sounding = x[gate > 0.5] if np.any(gate > 0.5) else x
    rms = np.sqrt(np.mean(sounding**2)) + 1e-12
    return np.clip(x * (10 ** (db / 20) / rms), -1, 1)


def _render_synthetic(job: Job, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, int(job.id.split("_")[1])])
    n = int(job.seconds * SAMPLE_RATE)
    a = job.attributes
    gate = _envelope(n, RHYTHMS[a["rhythm"]])
    if job.kind == "tone":
        lo, hi = PITCHES[a["pitch"]]
        x = _tone(a["timbre"], rng.uniform(lo, hi), n)
    else:
        x = _noise(a["colour"], n, rng)
    return _at_level(x * gate, gate, LOUDNESS[a["loudness"]])


def _render_speech(exe: str, job: Job, tmp: Path) -> np.ndarray:
    a = job.attributes
    voice = GENDERS[a["gender"]][int(job.id.split("_")[1]) % 2]
    x = speak(exe, job.text, tmp, voice, VOICE_PITCHES[a["pitch"]], SPEEDS[a["speed"]], SAMPLE_RATE).astype(np.float64)
    return _at_level(x, np.ones_like(x), SPEECH_DB)


def _render(exe: str | None, job: Job, out_dir: Path, seed: int) -> float:
    """Write one clip (atomically: a killed run never leaves a truncated WAV) and return its seconds."""
    final = out_dir / job.path
    if final.is_file():
        return sf.info(str(final)).duration
    final.parent.mkdir(parents=True, exist_ok=True)
    if job.kind == "speech":
        x = _render_speech(exe, job, final.with_name(final.stem + ".espeak.wav"))
    else:
        x = _render_synthetic(job, seed)
    tmp = final.with_name(final.stem + ".partial.wav")
    save_audio(tmp, torch.from_numpy(x).float(), SAMPLE_RATE)
    tmp.replace(final)
    return len(x) / SAMPLE_RATE


def synthesize_caption_corpus(root: str | Path, n_clips: int = 600, seed: int = 0, workers: int = 2) -> Path:
    """Build (or reuse) the corpus under ``root/caption-embedded-<hash>/`` and return its manifest."""
    jobs = plan(n_clips, seed)
    settings = {"recipe": RECIPE_VERSION, "seed": seed, "jobs": [asdict(j) for j in jobs]}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
    out_dir = Path(root) / f"caption-embedded-{digest}"
    manifest = out_dir / "manifest.jsonl"
    if manifest.is_file():
        return manifest
    exe = find_espeak() if any(j.kind == "speech" for j in jobs) else None
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:  # espeak-ng runs as a subprocess
        seconds = list(pool.map(lambda job: _render(exe, job, out_dir, seed), jobs))
    rows = [
        Utterance(
            path=j.path,
            duration=round(s, 4),
            id=j.id,
            text=j.caption,
            extra={"split": j.split, "kind": j.kind, **j.attributes, "spoken": j.text},
        )
        for j, s in zip(jobs, seconds, strict=True)
    ]
    return write_manifest(manifest, rows)


class EmbeddedCaptions(CaptionDataModule):
    """The embedded caption corpus (see the module docstring), synthesised on first use."""

    def __init__(self, root: str, n_clips: int = 600, corpus_seed: int = 0, workers: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.root, self.n_clips, self.corpus_seed, self.workers = root, n_clips, corpus_seed, workers

    def clips(self) -> list[CaptionClip]:
        return manifest_clips(synthesize_caption_corpus(self.root, self.n_clips, self.corpus_seed, self.workers))
