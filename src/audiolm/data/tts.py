"""TTS data: a corpus manifest annotated with transcripts and phonemes, and items of (phonemes,
speaker prompt, target codes) over the token store.

``TTSAnnotate`` runs before tokenisation (``data.annotate``): every row gets its text
(transcribed with Whisper where the corpus has none), its phoneme string and, optionally, the ids
of the most similar utterances of the same speaker. The result is a manifest of its own under
``cache_dir``, keyed by everything that shaped it, so it is built once and the token store made
from it carries the annotations in its index (``extra``).

``TTSItems`` (``data.items``) serves each target utterance with a prompt: a ``prompt_seconds``
crop of another utterance of the same speaker (a mined similar one with ``similar_p``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from audiolm.audio.io import load_audio
from audiolm.codecs.base import seconds_to_frames
from audiolm.data.manifest import Utterance, read_manifest, write_manifest
from audiolm.data.prepare.similar import similar_utterances
from audiolm.data.samplers import Visit
from audiolm.data.tokens.store import TokenStore
from audiolm.data.tokens.tokenize import resolve_device
from audiolm.errors import ConfigError, DataError
from audiolm.text.frontend import TextFrontend
from audiolm.text.transcribe import WhisperTranscriber

log = logging.getLogger(__name__)
RECIPE_VERSION = 1
REPORT = "annotate_report.json"


class TTSAnnotate:
    """Corpus manifest -> TTS manifest (text, ``phonemes``, ``language``, optional ``similar`` per row).

    Args:
        text: the front-end whose phonemizer (language) annotates the rows.
        cache_dir: where annotated manifests are kept.
        whisper_checkpoint: openai-whisper ``.pt`` file, needed only when rows lack a transcript.
        whisper_language: language code for Whisper; None detects it.
        similar_prompts: mine this many most similar utterances of the same speaker per row (0: off).
        device: where Whisper runs; ``auto`` is the GPU when there is one.
    """

    def __init__(
        self,
        text: TextFrontend,
        cache_dir: str,
        whisper_checkpoint: str | None = None,
        whisper_language: str | None = None,
        similar_prompts: int = 0,
        device: str = "auto",
    ):
        if similar_prompts < 0:
            raise ConfigError(f"data.annotate.similar_prompts must be >= 0, got {similar_prompts}")
        self.text, self.cache_dir = text, Path(cache_dir)
        self.whisper_checkpoint, self.whisper_language = whisper_checkpoint, whisper_language
        self.similar_prompts, self.device = similar_prompts, device

    def _key(self, manifest: Path) -> str:
        whisper = Path(self.whisper_checkpoint) if self.whisper_checkpoint else None
        settings = {
            "recipe": RECIPE_VERSION,
            "manifest": hashlib.sha256(manifest.read_bytes()).hexdigest(),
            "language": self.text.language,
            "similar": self.similar_prompts,
            "whisper": [str(whisper), whisper.stat().st_size] if whisper and whisper.is_file() else None,
            "whisper_language": self.whisper_language,
        }
        return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]

    def __call__(self, manifest: Path) -> Path:
        manifest = Path(manifest)
        out = self.cache_dir / f"{manifest.parent.name}-tts-{self._key(manifest)}" / "manifest.jsonl"
        if out.is_file():
            return out
        rows, root = read_manifest(manifest), manifest.resolve().parent
        for r in rows:
            r.path = str(r.resolve(root))  # absolute: the annotated manifest lives elsewhere, data_dir may be relative
        transcribed = self._transcribe(rows, manifest)
        kept, skipped = [], []
        phonemes = self.text.phonemizer.phonemize_or_none([r.text for r in rows])
        for r, p in zip(rows, phonemes, strict=True):
            if p is None:
                skipped.append({"id": r.id, "text": r.text, "reason": "text has nothing to pronounce"})
                continue
            r.extra = {**r.extra, "phonemes": p, "language": self.text.language}
            kept.append(r)
        if not kept:
            raise DataError(
                f"{manifest}: no utterance has a transcript that can be pronounced in "
                f"{self.text.language}; check the texts and text.language"
            )
        if self.similar_prompts:
            for r, similar in zip(kept, similar_utterances(kept, self.similar_prompts), strict=True):
                r.extra["similar"] = similar
        out.parent.mkdir(parents=True, exist_ok=True)
        (out.parent / REPORT).write_text(
            json.dumps(
                {
                    "source": str(manifest),
                    "n_rows": len(rows),
                    "n_kept": len(kept),
                    "n_transcribed": transcribed,
                    "skipped": skipped,
                },
                indent=1,
            )
        )
        if skipped:
            log.warning("%d utterance(s) skipped (nothing to pronounce); see %s", len(skipped), out.parent / REPORT)
        return write_manifest(out, kept)

    def _transcribe(self, rows: list[Utterance], manifest: Path) -> int:
        """Fill in missing texts with Whisper; returns how many were transcribed."""
        missing = [r for r in rows if not (r.text or "").strip()]
        if not missing:
            return 0
        if not self.whisper_checkpoint:
            raise ConfigError(
                f"{manifest}: {len(missing)} of {len(rows)} utterances have no transcript (e.g. "
                f"{missing[0].path}). Give texts in the manifest or as sidecar .txt files, or set "
                f"data.annotate.whisper_checkpoint=/path/to/whisper.pt to transcribe them"
            )
        asr = WhisperTranscriber(
            self.whisper_checkpoint,
            self.whisper_language,
            resolve_device(self.device),
            config_key="data.annotate.whisper_checkpoint",
        )
        log.info("transcribing %d utterance(s) with Whisper", len(missing))
        for r in missing:
            wav = load_audio(r.path, 16000, offset=r.offset, duration=r.duration)
            r.text = asr(wav, 16000)
            r.extra = {**r.extra, "transcribed": True}
        return len(missing)


class TTSItems(Dataset):
    """Items ``{"phonemes": [T], "codes": [Q, F], "prompt": [Q, Fp]}`` of the store entries ``indices``.

    Utterances longer than ``max_frames`` are left out (a TTS target cannot be cut mid-sentence);
    so are rows without phonemes. The prompt comes from another utterance of the same speaker, from
    any split (it conditions, it is not a target): one of its mined ``similar`` ones with
    probability ``similar_p``, else any; an utterance whose speaker has no other one prompts itself.
    Each visit draws its prompt and crop from its own seed (``Visit``: run seed, epoch, position).
    """

    def __init__(
        self,
        store: TokenStore,
        indices: list[int],
        max_frames: int,
        train: bool,
        text: TextFrontend,
        prompt_seconds: float = 3.0,
        similar_p: float = 0.5,
    ):
        if prompt_seconds <= 0:
            raise ConfigError(
                f"data.items.prompt_seconds (task.model.prompt_seconds) must be > 0, got {prompt_seconds}"
            )
        self.store, self.train, self.similar_p = store, train, similar_p
        self.prompt_frames = seconds_to_frames(prompt_seconds, store.frame_rate)
        entries = store.entries
        no_text = [i for i in indices if "phonemes" not in (entries[i].get("extra") or {})]
        if no_text:
            raise DataError(
                f"{store.path}: {len(no_text)} utterance(s) have no phonemes (e.g. {entries[no_text[0]]['id']}); "
                f"a TTS run needs data.annotate (task=tts sets it) before tokenisation"
            )
        self.indices = [i for i in indices if entries[i]["n_frames"] <= max_frames]
        if len(self.indices) < len(indices):
            log.warning(
                "%d of %d utterances are longer than data.segment_seconds (%d frames) and left out",
                len(indices) - len(self.indices),
                len(indices),
                max_frames,
            )
        self.phonemes = {i: text.vocab.encode(entries[i]["extra"]["phonemes"]) for i in self.indices}
        self.by_speaker: dict[str, list[int]] = defaultdict(list)
        for i in range(len(entries)):
            self.by_speaker[self._speaker(i)].append(i)
        self.index_of = {e["id"]: i for i, e in enumerate(entries)}
        alone = sum(len(self.by_speaker[self._speaker(i)]) < 2 for i in self.indices)
        if alone:
            log.warning("%d utterance(s) have no other utterance of their speaker; they prompt themselves", alone)
        longest = {s: max(entries[j]["n_frames"] for j in members) for s, members in self.by_speaker.items()}
        self.lengths = [
            len(self.phonemes[i]) + min(self.prompt_frames, longest[self._speaker(i)]) + entries[i]["n_frames"]
            for i in self.indices
        ]  # for bucketing: about the sequence length

    def _speaker(self, i: int) -> str:
        e = self.store.entries[i]
        return e.get("speaker") or e["id"]

    def __len__(self) -> int:
        return len(self.indices)

    def _prompt_source(self, i: int, rng: np.random.Generator) -> int:
        similar = [
            self.index_of[s]
            for s in (self.store.entries[i].get("extra") or {}).get("similar", [])
            if s in self.index_of
        ]
        if similar and rng.random() < self.similar_p:
            return similar[rng.integers(len(similar))]
        same = self.by_speaker[self._speaker(i)]
        if len(same) < 2:
            return i
        pick = int(rng.integers(len(same) - 1))  # any other utterance of the speaker, uniformly
        return same[pick] if same[pick] != i else same[-1]

    def __getitem__(self, key: Visit | int) -> dict[str, torch.Tensor]:
        visit = Visit.of(key)
        i, rng = self.indices[visit.index], visit.rng()
        source = self.store.codes(self._prompt_source(i, rng))
        n = min(self.prompt_frames, source.shape[1])
        start = int(rng.integers(0, source.shape[1] - n + 1)) if self.train else 0
        return {
            "phonemes": torch.tensor(self.phonemes[i], dtype=torch.long),
            "codes": torch.from_numpy(np.asarray(self.store.codes(i), dtype=np.int64)),
            "prompt": torch.from_numpy(np.asarray(source[:, start : start + n], dtype=np.int64)),
        }

    @staticmethod
    def collate(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """-> phonemes [B, T], codes [B, Q, F], prompt [B, Q, Fp] (zero-padded), their ``*_lengths`` [B], and
        ``frame_mask`` [B, F] (True on real target frames, as in the audio LM's batches)."""
        batch = {}
        for key in ("phonemes", "codes", "prompt"):
            tensors = [item[key] for item in items]
            lengths = torch.tensor([t.shape[-1] for t in tensors])
            padded = torch.zeros(len(tensors), *tensors[0].shape[:-1], int(lengths.max()), dtype=torch.long)
            for b, t in enumerate(tensors):
                padded[b, ..., : t.shape[-1]] = t
            batch[key], batch[f"{key}_lengths"] = padded, lengths
        batch["frame_mask"] = torch.arange(batch["codes"].shape[-1])[None] < batch["codes_lengths"][:, None]
        return batch
