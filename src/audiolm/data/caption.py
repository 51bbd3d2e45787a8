"""Audio + caption data for the captioner: clips, a dataset of 16 kHz waveforms, batches and splits.

A caption datamodule only has to say where its clips are (``clips()``); this module checks them,
splits them and batches them. Batches are::

    {"wav": [B, T] float at 16 kHz, zero-padded; "lengths": [B] samples;
     "captions": list[str] (B); "ids": list[str] (B)}

Checks, done once at setup: a clip whose caption is empty is skipped and reported (there is
nothing to learn from it, and nothing to score against); a clip longer than ``max_seconds``
(Whisper's 30 s window) is refused with an error naming it, since cutting it would pair the
caption with audio it may not describe.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import soundfile as sf
import torch
from torch.utils.data import DataLoader, Dataset

from audiolm.audio.io import load_audio
from audiolm.data.manifest import read_manifest
from audiolm.data.samplers import BucketBatchSampler, Visit
from audiolm.data.split import check_val_percent, declared_side, side_of
from audiolm.errors import DataError

log = logging.getLogger(__name__)
SAMPLE_RATE = 16_000  # Whisper's


@dataclass(frozen=True)
class CaptionClip:
    """One clip: ``duration`` seconds of ``path`` from ``offset`` (None: to the end), and its caption."""

    id: str
    path: str
    caption: str
    offset: float = 0.0
    duration: float | None = None
    split: str | None = None  # "train" / "val" (any name ``audiolm.data.split`` knows), or None: a hash of the id

    def seconds(self) -> float:
        if self.duration is not None:
            return self.duration
        return sf.info(self.path).duration - self.offset


class CaptionDataset(Dataset):
    def __init__(self, clips: list[CaptionClip]):
        self.clips = clips

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, key: Visit | int) -> dict:
        clip = self.clips[Visit.of(key).index]
        wav = load_audio(clip.path, SAMPLE_RATE, clip.offset, clip.duration)[0]
        return {"wav": wav, "caption": clip.caption, "id": clip.id}


def collate_captions(items: list[dict]) -> dict:
    lengths = torch.tensor([len(x["wav"]) for x in items])
    wav = torch.zeros(len(items), int(lengths.max()))
    for i, x in enumerate(items):
        wav[i, : len(x["wav"])] = x["wav"]
    return {"wav": wav, "lengths": lengths, "captions": [x["caption"] for x in items], "ids": [x["id"] for x in items]}


class CaptionDataModule(L.LightningDataModule, ABC):
    """Base of the caption datamodules; subclasses implement ``clips()``."""

    sample_rate = SAMPLE_RATE

    def __init__(
        self,
        batch_size: int = 8,
        num_workers: int = 0,
        val_percent: float = 10.0,
        max_seconds: float = 30.0,
        seed: int = 0,
    ):
        super().__init__()
        self.batch_size, self.num_workers = batch_size, num_workers
        self.val_percent = check_val_percent(val_percent)
        self.max_seconds, self.seed = max_seconds, seed
        self.train_clips: list[CaptionClip] | None = None
        self.val_clips: list[CaptionClip] = []

    @abstractmethod
    def clips(self) -> list[CaptionClip]:
        """Every clip of the corpus, with its caption."""

    def prepare_data(self) -> None:
        self.clips()  # synthesising or reading the corpus happens once, on one process

    def setup(self, stage: str | None = None) -> None:
        if self.train_clips is not None:
            return
        clips = self.checked(self.clips())
        self.train_clips = [c for c in clips if self._split(c) == "train"]
        self.val_clips = [c for c in clips if self._split(c) == "val"]
        if not self.train_clips or not self.val_clips:
            raise DataError(
                f"{type(self).__name__}: the split left {len(self.train_clips)} train and "
                f"{len(self.val_clips)} val clips; both need at least one (adjust data.val_percent "
                f"or the source's split column)"
            )

    def checked(self, clips: list[CaptionClip]) -> list[CaptionClip]:
        """``clips`` without empty captions (reported); an error naming any clip over ``max_seconds``."""
        empty = [c.id for c in clips if not c.caption.strip()]
        if empty:
            log.warning("skipped %d clip(s) with an empty caption: %s", len(empty), ", ".join(empty[:10]))
        kept = [c for c in clips if c.caption.strip()]
        too_long = [(c.id, s) for c in kept if (s := c.seconds()) > self.max_seconds + 1e-3]
        if too_long:
            listed = ", ".join(f"{i} ({s:.1f} s)" for i, s in too_long[:5])
            raise DataError(
                f"{len(too_long)} clip(s) are longer than data.max_seconds={self.max_seconds:g} s, "
                f"Whisper's window: {listed}. Cut them into clips of at most 30 s, each with the "
                f"caption of its own part"
            )
        if not kept:
            raise DataError(f"{type(self).__name__} found no clip with a caption")
        return kept

    def _split(self, clip: CaptionClip) -> str:
        """The clip's side by the one split rule (``audiolm.data.split``)."""
        return side_of(clip.id, self.val_percent, {"split": clip.split})

    def _loader(self, clips: list[CaptionClip], train: bool) -> DataLoader:
        epoch = self.trainer.current_epoch if self.trainer is not None else 0
        lengths = [int(c.seconds() * 100) for c in clips]  # centiseconds: a bucketing key, not code frames
        sampler = BucketBatchSampler(lengths, self.batch_size, shuffle=train, seed=self.seed, start_epoch=epoch)
        return DataLoader(
            CaptionDataset(clips),
            batch_sampler=sampler,
            collate_fn=collate_captions,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_clips, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_clips, train=False)


class ManifestCaptions(CaptionDataModule):
    """Clips from a manifest (JSON lines): ``text`` is the caption, an optional ``split`` (or
    ``is_audioset_eval``) column the split."""

    def __init__(self, manifest: str, **kwargs):
        super().__init__(**kwargs)
        self.manifest = manifest

    def clips(self) -> list[CaptionClip]:
        return manifest_clips(Path(self.manifest))


def manifest_clips(path: Path) -> list[CaptionClip]:
    """The clips of a manifest: ``text`` is the caption; a ``split`` or group column (optional) the split."""
    return [
        CaptionClip(
            id=u.id,
            path=str(u.resolve(path.parent)),
            caption=u.text,
            offset=u.offset,
            duration=u.duration,
            split=declared_side(u.extra, u.id),
        )
        for u in read_manifest(path)
    ]
