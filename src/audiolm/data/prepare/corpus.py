"""Corpora: where a run's manifest comes from. Each one yields a manifest path, preparing it if needed.

All of them end in the same JSON-lines manifest (see ``audiolm.data.manifest``), so everything
downstream is shared. The ``data`` config options build them (see ``audiolm.data.datamodule``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

from audiolm.data.corpora.musiccaps import read_musiccaps
from audiolm.data.corpora.speech import N_UTTERANCES, synthesize_corpus
from audiolm.data.prepare.pipeline import PrepareOptions, prepare
from audiolm.data.prepare.sources import Sources, read_media_list, scan_folder
from audiolm.errors import DataError, MissingFileError


class Corpus(ABC):
    @abstractmethod
    def manifest(self) -> Path:
        """Path of the corpus manifest, prepared on first use."""


class EmbeddedCorpus(Corpus):
    """The synthetic espeak-ng speech corpus (``data=synthetic``; see ``audiolm.data.corpora.speech``),
    synthesised once and cached."""

    def __init__(
        self, root: str, n_utterances: int = N_UTTERANCES, sample_rate: int = 16000, seed: int = 0, workers: int = 2
    ):
        self.root, self.n_utterances, self.sample_rate, self.seed, self.workers = (
            root,
            n_utterances,
            sample_rate,
            seed,
            workers,
        )

    def manifest(self) -> Path:
        return synthesize_corpus(self.root, self.n_utterances, self.sample_rate, self.seed, self.workers)


class ManifestCorpus(Corpus):
    """A prepared JSON-lines manifest (path, duration, ...), used as it is: the user wrote it, or an
    earlier prepare step did."""

    def __init__(self, path: str):
        self.path = Path(path)

    def manifest(self) -> Path:
        if not self.path.is_file():
            raise MissingFileError(
                f"manifest not found: {self.path}. Set data.path to a JSON-lines "
                f'file with one {{"path": ..., "duration": ...}} object per line.'
            )
        if self.path.suffix.lower() == ".csv":
            raise DataError(
                f"{self.path} is a CSV; data=manifest reads a prepared JSON-lines manifest. To prepare "
                f"the media files a CSV lists, use data=media data.path={self.path}"
            )
        return self.path


class PreparedCorpus(Corpus):
    """Media that ``audiolm.data.prepare.pipeline`` turns into segments and a manifest under ``cache_dir``,
    once per (inputs, options); later uses only re-list the inputs and find the finished folder."""

    def __init__(self, cache_dir: str, prepare: PrepareOptions | None = None, progress: bool = True):
        self.cache_dir, self.options, self.progress = Path(cache_dir), prepare or PrepareOptions(), progress

    @abstractmethod
    def sources(self) -> Sources:
        """The media to prepare."""

    def manifest(self) -> Path:
        return prepare(self.sources(), self.cache_dir, self.options, progress=self.progress)


class FolderCorpus(PreparedCorpus):
    """Every audio or video file under ``root`` (see ``audiolm.data.prepare.sources.scan_folder`` for how the
    layout names groups and speakers and where transcripts come from)."""

    def __init__(self, root: str, cache_dir: str, prepare: PrepareOptions | None = None, progress: bool = True):
        super().__init__(cache_dir, prepare, progress)
        self.root = Path(root)

    def sources(self) -> Sources:
        return scan_folder(self.root, exclude=self.cache_dir)


class MediaListCorpus(PreparedCorpus):
    """The media files a CSV or JSONL list names (``path`` column, optional text/speaker/offset/...)."""

    def __init__(self, path: str, cache_dir: str, prepare: PrepareOptions | None = None, progress: bool = True):
        super().__init__(cache_dir, prepare, progress)
        self.path = Path(path)

    def sources(self) -> Sources:
        return read_media_list(self.path)


class MusicCapsCorpus(PreparedCorpus):
    """MusicCaps-format captions (``ytid,start_s,end_s,caption,...``) over local audio in ``audio_dir``, read by
    ``audiolm.data.corpora.musiccaps.read_musiccaps`` (its docstring has the file-matching rule)."""

    def __init__(
        self, csv: str, audio_dir: str, cache_dir: str, prepare: PrepareOptions | None = None, progress: bool = True
    ):
        super().__init__(cache_dir, prepare, progress)
        self.csv, self.audio_dir = Path(csv), Path(audio_dir)

    def sources(self) -> Sources:
        return read_musiccaps(self.csv, self.audio_dir)
