"""The embedded default corpus: English speech synthesised offline with espeak-ng.

``make demo`` and the test suite train on this corpus so that nothing has to be downloaded.
Everything about it is deterministic: the sentences come from seeded templates over small word
lists written here, the speakers are fixed espeak-ng voice settings, and espeak-ng itself renders
the same bytes for the same input. The corpus folder is named after a hash of everything that
shapes it, so a finished corpus is reused at once and a changed recipe lands in a new folder.

Layout under ``root/embedded-<hash>/``::

    manifest.jsonl                    written last: its presence means the corpus is complete
    wavs/<speaker>/<id>.wav           16-bit mono WAV at ``sample_rate``
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

import soundfile as sf
import torch

from audiolm.audio.io import save_audio
from audiolm.data.corpora.espeak import TRIM_DB, TRIM_PAD_S, find_espeak, speak
from audiolm.data.manifest import Utterance, write_manifest
from audiolm.errors import ConfigError

# Bump when the rendering recipe changes in a way the hashed settings below do not capture.
RECIPE_VERSION = 1
VAL_PER_SPEAKER = 4
# The default size, as data=synthetic sets it: the demo's 330 steps over 800 utterances reach its
# val NLL without overfitting (400 overfit).
N_UTTERANCES = 800


@dataclass(frozen=True)
class Speaker:
    """One synthetic speaker: an espeak-ng voice (``language+variant``) at a fixed pitch and speed."""

    name: str
    voice: str
    pitch: int  # espeak-ng -p, 0..99, scales the variant's own pitch range
    speed: int  # espeak-ng -s, words per minute
    amplitude: int = 90  # espeak-ng -a (default 100, which clips now and then; Klatt clips more)


# Four accents x both genders x both synthesisers (formant and Klatt), so that speaker identity is
# audible in timbre, accent and prosody alike. All are plain espeak-ng 1.51 voices; none is mbrola.
SPEAKERS: tuple[Speaker, ...] = (
    Speaker("us_male", "en-us+m3", 40, 165),
    Speaker("us_female", "en-us+f2", 55, 170),
    Speaker("rp_male", "en-gb-x-rp+m1", 35, 155),
    Speaker("gb_female", "en-gb+f4", 60, 175),
    Speaker("scot_male", "en-gb-scotland+klatt", 45, 160, amplitude=70),
    Speaker("carib_female", "en-029+f3", 65, 160),
    Speaker("nyc_male", "en-us-nyc+klatt2", 30, 180, amplitude=60),
    Speaker("lanc_female", "en-gb-x-gbclan+f5", 70, 170),
)

# --- sentences -------------------------------------------------------------------------------
# Verbs come as (past, base) so that statements (past tense) and questions ("did ... base") agree
# with every subject without any grammar machinery. Every verb fits every object (all objects are
# things one can carry), and each thing has its own fitting adjectives, so no sentence is absurd.
SUBJECTS = [
    "the old farmer",
    "my sister",
    "a young doctor",
    "the quiet teacher",
    "our neighbour",
    "the little boy",
    "her grandmother",
    "the tired driver",
    "a friendly waiter",
    "the new student",
    "his uncle",
    "the baker",
    "my best friend",
    "the captain",
]
VERBS = [
    ("found", "find"),
    ("carried", "carry"),
    ("cleaned", "clean"),
    ("bought", "buy"),
    ("sold", "sell"),
    ("borrowed", "borrow"),
    ("hid", "hide"),
    ("moved", "move"),
    ("brought", "bring"),
    ("packed", "pack"),
    ("wrapped", "wrap"),
    ("picked up", "pick up"),
]
OBJECTS = [
    "a red umbrella",
    "the wooden chair",
    "an old bicycle",
    "a basket of apples",
    "a heavy suitcase",
    "a pair of boots",
    "the silver key",
    "a box of letters",
    "the broken clock",
    "the map",
    "a warm blanket",
    "the yellow kite",
    "a loaf of bread",
]
PLACES = [
    "in the garden",
    "at the station",
    "near the river",
    "behind the school",
    "on the hill",
    "by the harbour",
    "in the market",
    "at the library",
    "next to the bakery",
    "in the village",
]
PAST_TIMES = [
    "this morning",
    "last night",
    "yesterday",
    "on Sunday",
    "after lunch",
    "before sunrise",
    "in the evening",
    "last winter",
    "at noon",
]
FUTURE_TIMES = ["tomorrow", "next week", "on Friday", "after dinner", "tonight", "in the spring"]
THINGS = {
    "the road": ["wet", "dark", "empty", "busy"],
    "the water": ["cold", "warm", "calm", "deep"],
    "the station": ["busy", "crowded", "quiet", "empty"],
    "the market": ["busy", "loud", "quiet"],
    "the kitchen": ["warm", "dark", "quiet", "tidy"],
    "the sky": ["dark", "clear", "grey"],
    "the train": ["late", "crowded", "slow"],
    "the soup": ["cold", "hot", "salty"],
    "the music": ["loud", "quiet", "slow"],
    "the garden": ["green", "wet", "quiet"],
}
DEGREES = ["very", "quite", "a little", "surprisingly", "rather"]

TEMPLATES = [
    "{S} {V} {O} {P}.",
    "{S} {V} {O} {T}.",
    "{T}, {S} {V} {O} {P}.",
    "Did {S} {B} {O} {P}?",
    "Where did {S} {B} {O}?",
    "Why did {S} {B} {O} {T}?",
    "{S} said that {X} was {D} {A}.",
    "Was {X} {A} {T}?",
    "We will {B} {O} {F}.",
    "Please {B} {O} before you leave.",
    "I think {S} {V} {O} {P}.",
    "{S} and {S2} {V} {O} together.",
    "Everyone agreed that {X} was {D} {A} {T}.",
    "Can you {B} {O} {F}?",
]


def generate_sentences(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct English sentences of 5 to 14 words, the same for the same ``(n, seed)``."""
    rng = random.Random(seed)
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        subject, other = rng.sample(SUBJECTS, 2)
        past, base = rng.choice(VERBS)
        thing = rng.choice(sorted(THINGS))
        text = rng.choice(TEMPLATES).format(
            S=subject,
            S2=other,
            V=past,
            B=base,
            O=rng.choice(OBJECTS),
            P=rng.choice(PLACES),
            T=rng.choice(PAST_TIMES),
            F=rng.choice(FUTURE_TIMES),
            X=thing,
            A=rng.choice(THINGS[thing]),
            D=rng.choice(DEGREES),
        )
        text = text[0].upper() + text[1:]
        if text not in seen and 5 <= len(text.split()) <= 14:
            seen.add(text)
            out.append(text)
    return out


# --- synthesis -------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Job:
    id: str
    speaker: Speaker
    text: str
    split: str

    @property
    def path(self) -> str:
        return f"wavs/{self.speaker.name}/{self.id}.wav"


def _plan(n_utterances: int, seed: int) -> list[_Job]:
    """Assign sentences to speakers round-robin and hold out each speaker's last few for val."""
    if n_utterances < 2 * len(SPEAKERS):
        raise ConfigError(
            f"n_utterances={n_utterances} is too small: every one of the {len(SPEAKERS)} "
            f"speakers needs at least one train and one val utterance "
            f"(use n_utterances >= {2 * len(SPEAKERS)})"
        )
    texts = generate_sentences(n_utterances, seed)
    per_speaker: dict[str, list[tuple[int, str]]] = {s.name: [] for s in SPEAKERS}
    for i, text in enumerate(texts):
        per_speaker[SPEAKERS[i % len(SPEAKERS)].name].append((i, text))
    jobs = []
    for speaker in SPEAKERS:
        rows = per_speaker[speaker.name]
        # A fixed few per speaker, fewer on tiny corpora so that val never outnumbers train.
        n_val = min(VAL_PER_SPEAKER, max(1, len(rows) // 4))
        for k, (i, text) in enumerate(rows):
            split = "val" if k >= len(rows) - n_val else "train"
            jobs.append(_Job(f"{speaker.name}_{i:04d}", speaker, text, split))
    return sorted(jobs, key=lambda j: j.id)


def _corpus_hash(jobs: list[_Job], sample_rate: int) -> str:
    """Hash of everything that shapes the audio, so any change lands in a fresh folder.

    The espeak-ng version is left out on purpose: reading it would run espeak-ng on every cache
    hit, and the corpus only needs to be self-consistent, not identical across installs.
    """
    settings = {
        "recipe": RECIPE_VERSION,
        "sample_rate": sample_rate,
        "trim": [TRIM_DB, TRIM_PAD_S],
        "jobs": [[j.id, asdict(j.speaker), j.text, j.split] for j in jobs],
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]


def _render(exe: str, job: _Job, out_dir: Path, sample_rate: int) -> int:
    """Synthesise one utterance into its final WAV (atomically) and return its length in samples."""
    final = out_dir / job.path
    if final.is_file():  # finished by an earlier, interrupted run: files only appear complete
        return sf.info(str(final)).frames
    final.parent.mkdir(parents=True, exist_ok=True)
    s = job.speaker
    wav = torch.from_numpy(
        speak(
            exe,
            job.text,
            final.with_name(final.stem + ".espeak.wav"),
            s.voice,
            s.pitch,
            s.speed,
            sample_rate,
            s.amplitude,
        )
    )[None]
    # Write under a temporary name and rename, so a killed run never leaves a truncated final WAV.
    tmp = final.with_name(final.stem + ".partial.wav")
    save_audio(tmp, wav, sample_rate)
    tmp.replace(final)
    return wav.shape[-1]


def _run_all(fn: Callable[[_Job], int], jobs: list[_Job], workers: int, progress: bool) -> dict[str, int]:
    """Run ``fn`` over ``jobs`` on a thread pool; threads suffice because the work is a subprocess."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("synthesising embedded corpus"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        disable=not progress,
    )
    lengths: dict[str, int] = {}
    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    try:
        with bar:
            task = bar.add_task("", total=len(jobs))
            futures = {pool.submit(fn, job): job.id for job in jobs}
            for fut in as_completed(futures):
                lengths[futures[fut]] = fut.result()
                bar.advance(task)
    finally:
        # On a failure, drop the queued jobs instead of synthesising the rest of the corpus first.
        pool.shutdown(wait=True, cancel_futures=True)
    return lengths


def synthesize_corpus(
    root: str | Path,
    n_utterances: int = N_UTTERANCES,
    sample_rate: int = 16000,
    seed: int = 0,
    workers: int = 2,
    progress: bool = True,
) -> Path:
    """Build (or reuse) the embedded corpus under ``root/embedded-<hash>/`` and return its manifest.

    The manifest has one row per utterance with relative ``path``, ``duration``, ``id``,
    ``speaker``, ``text`` and the extra keys ``split`` (``train``/``val``) and ``voice``. If the
    manifest for these settings already exists it is returned without running espeak-ng; an
    interrupted run is resumed, keeping the WAVs it finished.
    """
    jobs = _plan(n_utterances, seed)
    out_dir = Path(root) / f"embedded-{_corpus_hash(jobs, sample_rate)}"
    manifest = out_dir / "manifest.jsonl"
    if manifest.is_file():
        return manifest
    exe = find_espeak()
    lengths = _run_all(lambda job: _render(exe, job, out_dir, sample_rate), jobs, workers, progress)
    rows = [
        Utterance(
            path=j.path,
            duration=round(lengths[j.id] / sample_rate, 4),
            id=j.id,
            speaker=j.speaker.name,
            text=j.text,
            extra={"split": j.split, "voice": j.speaker.voice},
        )
        for j in jobs
    ]
    return write_manifest(manifest, rows)
