"""Corpora: where a run's manifest comes from. Each one yields a manifest path, preparing it if needed.

``data.corpus`` in the config picks one by ``_target_``; all of them end in the same JSON-lines
manifest (see ``audiolm.data.manifest``), so everything downstream is shared.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from pathlib import Path

import soundfile as sf

from audiolm.data.embedded import synthesize_corpus
from audiolm.data.manifest import Utterance, write_manifest
from audiolm.errors import DataError, MissingFileError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")


class Corpus(ABC):
    @abstractmethod
    def manifest(self) -> Path:
        """Path of the corpus manifest, prepared on first use."""


class EmbeddedCorpus(Corpus):
    """The offline espeak-ng corpus (see ``audiolm.data.embedded``), synthesised once and cached."""

    def __init__(self, root: str, n_utterances: int = 400, sample_rate: int = 16000, seed: int = 0, workers: int = 2):
        self.root, self.n_utterances, self.sample_rate, self.seed, self.workers = root, n_utterances, sample_rate, seed, workers

    def manifest(self) -> Path:
        return synthesize_corpus(self.root, self.n_utterances, self.sample_rate, self.seed, self.workers)


class ManifestCorpus(Corpus):
    """A JSON-lines manifest the user wrote or an ingest step produced."""

    def __init__(self, path: str):
        self.path = Path(path)

    def manifest(self) -> Path:
        if not self.path.is_file():
            raise MissingFileError(f"manifest not found: {self.path}. Set data.corpus.path to a JSON-lines "
                                    f"file with one {{\"path\": ..., \"duration\": ...}} object per line.")
        return self.path


class FolderCorpus(Corpus):
    """Every audio file under ``root``; the speaker is the name of the file's parent folder.

    The manifest is written under ``cache_dir`` (never into the user's folder) and rebuilt when
    the set of files changes.
    """

    def __init__(self, root: str, cache_dir: str, extensions: tuple[str, ...] = AUDIO_EXTENSIONS):
        self.root, self.cache_dir, self.extensions = Path(root), Path(cache_dir), tuple(extensions)

    def manifest(self) -> Path:
        if not self.root.is_dir():
            raise MissingFileError(f"data folder not found: {self.root}. Set data.corpus.root=/path/to/audio "
                                    f"(a folder of {', '.join(self.extensions)} files, one sub-folder per speaker).")
        files = sorted(p for p in self.root.rglob("*") if p.suffix.lower() in self.extensions and p.is_file())
        if not files:
            raise DataError(f"no audio files ({', '.join(self.extensions)}) under {self.root}")
        listing = "\n".join(f"{p}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files)
        digest = hashlib.sha1(listing.encode()).hexdigest()[:12]
        out = self.cache_dir / f"{self.root.name}-{digest}" / "manifest.jsonl"
        if out.is_file():
            return out
        rows = []
        for p in files:
            info = sf.info(str(p))
            speaker = p.parent.name if p.parent != self.root else ""
            rows.append(Utterance(path=str(p.resolve()), duration=info.frames / info.samplerate,
                                  id=str(p.relative_to(self.root)), speaker=speaker))
        return write_manifest(out, rows)
