"""MusicCaps-format captions: a CSV (``ytid,start_s,end_s,...,caption``) and a folder of local audio.

Each row's audio is the file in ``audio_dir`` named by its ``ytid`` (any extension soundfile
reads: wav, flac, ogg, mp3). The file may hold the whole video's audio, in which case the clip
is ``start_s``..``end_s`` of it, or the clip alone (as most MusicCaps download scripts save it),
recognised by a length close to ``end_s - start_s``. Rows whose audio is missing are skipped and
counted in one report line: downloads of MusicCaps always miss some videos. The split is the
CSV's ``is_audioset_eval`` column when it has one (eval clips are held out), else a hash of the id.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import soundfile as sf

from audiolm.data.caption import CaptionClip, CaptionDataModule
from audiolm.errors import DataError, MissingFileError

log = logging.getLogger(__name__)
REQUIRED = ("ytid", "start_s", "end_s", "caption")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
CUT_TOLERANCE_S = 0.5


class MusicCapsCaptions(CaptionDataModule):
    def __init__(self, csv: str, audio_dir: str, **kwargs):
        super().__init__(**kwargs)
        self.csv, self.audio_dir = csv, audio_dir

    def clips(self) -> list[CaptionClip]:
        rows = read_rows(Path(self.csv))
        audio = _audio_files(Path(self.audio_dir))
        clips, missing = [], []
        for row in rows:
            path = audio.get(row["ytid"])
            clip = None if path is None else _clip(row, path)
            if clip is None:
                missing.append(row["ytid"])
                continue
            clips.append(clip)
        if missing:
            log.warning("skipped %d of %d MusicCaps rows with no audio file in %s, or one that ends before the "
                        "clip starts (first: %s)", len(missing), len(rows), self.audio_dir, ", ".join(missing[:5]))
        if not clips:
            raise DataError(f"none of the {len(rows)} rows of {self.csv} has an audio file in {self.audio_dir}; files "
                            f"must be named by the row's ytid, e.g. {rows[0]['ytid']}.wav (set data.audio_dir)")
        return clips


def read_rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise MissingFileError(f"MusicCaps CSV not found: {path} (set data.csv=/path/to/musiccaps-public.csv)")
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [k for k in REQUIRED if k not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{path}: missing column(s) {missing}; a MusicCaps CSV has {list(REQUIRED)} at least")
        return list(reader)


def _audio_files(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise MissingFileError(f"audio folder not found: {folder} (set data.audio_dir to the folder of <ytid>.wav files)")
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in AUDIO_SUFFIXES}


def _clip(row: dict[str, str], path: Path) -> CaptionClip | None:
    """The row's clip in ``path``; None when the file ends before the clip starts."""
    try:
        start, end = float(row["start_s"]), float(row["end_s"])
    except ValueError:
        raise DataError(f"MusicCaps row {row['ytid']}: start_s / end_s are not numbers "
                        f"({row['start_s']!r}, {row['end_s']!r})") from None
    length = sf.info(str(path)).duration
    offset = 0.0 if abs(length - (end - start)) <= CUT_TOLERANCE_S else start  # already cut, or the whole video
    if length - offset <= 0:
        return None
    eval_flag = row.get("is_audioset_eval")
    split = None if eval_flag in (None, "") else ("val" if eval_flag.strip().lower() == "true" else "train")
    return CaptionClip(id=row["ytid"], path=str(path), caption=row["caption"].strip(), offset=offset,
                       duration=min(end - start, length - offset), split=split)
