"""The LightningDataModule over codec tokens: corpus -> manifest -> token store -> windows.

The ``data`` config options name the factories at the bottom as ``_target_``, so users set flat keys
(``data.root``, ``data.path``, ``data.csv``) and the remaining keys go to ``TokenDataModule``.

Tokenisation happens once per (corpus, codec config) and is reused by every later run; fitted
codecs (melvq) get their state from the store, so the codec the task decodes with is exactly
the one the tokens were made with.

What a task trains on is pluggable: ``annotate`` turns the corpus manifest into the one that is
tokenised (TTS: transcripts and phonemes added), and ``items`` builds the dataset over the store
(default: ``CodeWindows``, the audio LM's windows). A task's yaml sets both (``data.annotate``,
``data.items``), whichever ``data`` option supplies the corpus.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader

from audiolm.codecs.base import AudioCodec, seconds_to_frames
from audiolm.data.lm import CodeWindows
from audiolm.data.prepare.corpus import Corpus, FolderCorpus, ManifestCorpus, MediaListCorpus, MusicCapsCorpus
from audiolm.data.prepare.pipeline import PrepareOptions
from audiolm.data.samplers import BucketBatchSampler, ResumableLoader
from audiolm.data.split import VAL_PERCENT, check_val_percent, split_indices
from audiolm.data.tokens.store import TokenStore
from audiolm.data.tokens.tokenize import tokenize_manifest
from audiolm.errors import ConfigError, DataError
from audiolm.patterns.base import Pattern

log = logging.getLogger("audiolm")


def store_root_for(manifest: Path, tokens_dir: str | Path) -> Path:
    """Token stores of one manifest live under ``tokens_dir/<manifest folder>-<path hash>/``."""
    digest = hashlib.sha1(str(manifest.resolve()).encode()).hexdigest()[:8]
    return Path(tokens_dir) / f"{manifest.parent.name}-{digest}"


class TokenDataModule(L.LightningDataModule):
    def __init__(
        self,
        corpus: Corpus,
        codec: AudioCodec,
        tokens_dir: str,
        segment_seconds: float = 10.0,
        batch_size: int = 16,
        num_workers: int = 0,
        val_percent: float = VAL_PERCENT,
        tokenize_batch_size: int = 16,
        tokenize_device: str = "auto",
        seed: int = 0,
        annotate: Callable[[Path], Path] | None = None,
        items: Callable[..., CodeWindows] | None = None,
        max_tokens: int | None = None,
        pattern: Callable[..., Pattern] | None = None,
    ):
        """``annotate(manifest) -> manifest`` runs before tokenisation; ``items(store, indices, max_frames,
        train)`` is a dataset with ``lengths`` (the backbone positions of each item, for bucketing and the
        token budget) and ``collate``. ``max_tokens`` caps a batch's padded positions (``batch_size`` then
        caps its items); ``pattern`` (the audio LM's factory, as ``AudioLM`` takes it) lays out the default
        items, windows of codes, and so counts their positions."""
        super().__init__()
        if max_tokens is not None and max_tokens < 1:
            raise ConfigError(f"data.max_tokens must be >= 1 (null: batches of data.batch_size), got {max_tokens}")
        # the pattern counts the positions of the default items only (a task's own items count theirs)
        self.max_tokens = max_tokens
        lays_out = pattern is not None and items is None
        self.pattern = pattern(n_codebooks=codec.n_codebooks, codebook_size=codec.codebook_size) if lays_out else None
        self.annotate = annotate
        self.items = items or functools.partial(CodeWindows, num_steps=self.pattern.num_steps if self.pattern else None)
        self.corpus, self.codec, self.tokens_dir = corpus, codec, tokens_dir
        self.segment_seconds, self.batch_size, self.num_workers = segment_seconds, batch_size, num_workers
        self.val_percent, self.seed = check_val_percent(val_percent), seed
        self.tokenize_batch_size, self.tokenize_device = tokenize_batch_size, tokenize_device
        self.store: TokenStore | None = None
        self.train_indices: list[int] | None = None
        self.val_indices: list[int] | None = None

    @functools.cached_property
    def max_frames(self) -> int:
        """``segment_seconds`` in code frames (nearest frame, at least one); for audio LM windows, no more
        than the pattern lays out in ``max_tokens`` positions, so one window always fits a batch."""
        frames = seconds_to_frames(self.segment_seconds, self.codec.frame_rate)
        if self.pattern is None or self.max_tokens is None or self.pattern.num_steps(frames) <= self.max_tokens:
            return frames
        fitting = max(1, self.pattern.num_frames(self.max_tokens))
        log.warning(
            "data.segment_seconds=%g is %d positions with this codec and pattern, over data.max_tokens=%d: "
            "windows are cut to %d frames (%.2f s). Raise data.max_tokens (more memory) for longer windows.",
            self.segment_seconds,
            self.pattern.num_steps(frames),
            self.max_tokens,
            fitting,
            fitting / self.codec.frame_rate,
        )
        return fitting

    def _tokenize(self) -> TokenStore:
        manifest = self.corpus.manifest()
        if self.annotate is not None:
            manifest = self.annotate(manifest)
        return tokenize_manifest(
            manifest,
            self.codec,
            store_root_for(manifest, self.tokens_dir),
            batch_size=self.tokenize_batch_size,
            device=self.tokenize_device,
        )

    def prepare_data(self) -> None:
        self.store = self._tokenize()

    def setup(self, stage: str | None = None) -> None:
        if self.train_indices is not None:
            return
        if self.store is None:
            # A process that did not prepare (another DDP rank, or a caller that skipped prepare_data)
            # opens the store itself: complete by now, so this loads it and its fitted codec state.
            self.store = self._tokenize()
        self.train_indices, self.val_indices = self.split()
        if not self.train_indices or not self.val_indices:
            raise DataError(
                f"{self.store.path}: the split left {len(self.train_indices)} train and "
                f"{len(self.val_indices)} val items; the corpus needs at least one of each "
                f"(adjust data.val_percent or the manifest's 'split' column)"
            )

    def split(self) -> tuple[list[int], list[int]]:
        """(train, val) store positions by the one split rule (``audiolm.data.split``): a row's ``split`` or
        group column, else a stable hash of its id against ``val_percent``."""
        return split_indices(((e["id"], e.get("extra")) for e in self.store.entries), self.val_percent)

    def _loader(self, indices: list[int], train: bool) -> DataLoader:
        dataset = self.items(self.store, indices, self.max_frames, train)
        epoch = self.trainer.current_epoch if self.trainer is not None else 0  # restored before loaders are built
        sampler = BucketBatchSampler(
            dataset.lengths, self.batch_size, train, seed=self.seed, start_epoch=epoch, max_tokens=self.max_tokens
        )
        if train:
            self._train_sampler = sampler
        # The train loader's position is checkpointed (ResumableLoader); its own generator keeps the
        # global RNG (which a resumed run restores) untouched when an epoch's iterator starts.
        return (ResumableLoader if train else DataLoader)(
            dataset,
            batch_sampler=sampler,
            collate_fn=dataset.collate,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            generator=torch.Generator().manual_seed(self.seed),
        )

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Counts the train batches training has taken (the loader fetches ahead), for an exact resume."""
        if self.trainer is not None and self.trainer.training:
            self._train_sampler.consumed += 1
        return batch

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_indices, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_indices, train=False)


# One factory per media source: its own keys, then the TokenDataModule options (``**options``).


def folder_datamodule(
    root: str,
    cache_dir: str,
    prepare: PrepareOptions | None,
    codec: AudioCodec,
    pattern: Callable[..., Pattern] | None = None,
    **options: Any,
) -> TokenDataModule:
    """``data=folder data.root=/path``: every audio or video file under ``root``, prepared into ``cache_dir``."""
    return TokenDataModule(FolderCorpus(root, cache_dir, prepare), codec, pattern=pattern, **options)


def media_datamodule(
    path: str,
    cache_dir: str,
    prepare: PrepareOptions | None,
    codec: AudioCodec,
    pattern: Callable[..., Pattern] | None = None,
    **options: Any,
) -> TokenDataModule:
    """``data=media data.path=list.csv``: the media files a CSV/JSONL list names, prepared into ``cache_dir``."""
    return TokenDataModule(MediaListCorpus(path, cache_dir, prepare), codec, pattern=pattern, **options)


def musiccaps_datamodule(
    csv: str,
    audio_dir: str,
    cache_dir: str,
    prepare: PrepareOptions | None,
    codec: AudioCodec,
    pattern: Callable[..., Pattern] | None = None,
    **options: Any,
) -> TokenDataModule:
    """``data=musiccaps data.csv=... data.audio_dir=...``: captioned clips of local audio files."""
    return TokenDataModule(MusicCapsCorpus(csv, audio_dir, cache_dir, prepare), codec, pattern=pattern, **options)


def manifest_datamodule(
    path: str, codec: AudioCodec, pattern: Callable[..., Pattern] | None = None, **options: Any
) -> TokenDataModule:
    """``data=manifest data.path=manifest.jsonl``: a prepared manifest, used as it is."""
    return TokenDataModule(ManifestCorpus(path), codec, pattern=pattern, **options)
