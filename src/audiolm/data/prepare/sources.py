"""What to prepare: the media files of a folder or of a CSV/JSONL list (MusicCaps CSVs:
``audiolm.data.corpora.musiccaps``).

Each reader turns its input into ``SourceItem``s (a media file, optionally a window of it, with
speaker, group, transcript and extra columns) plus the problems it met while listing, so that the
prepare step can report them beside its own. Nothing here decodes audio; listing is cheap and runs
on every use, because the listing (with each file's size and mtime) keys the prepared cache.

Folder layout: ``root/{group}/{speaker}/.../file`` gives group and speaker; ``root/{speaker}/file``
gives a speaker only; files directly in ``root`` have neither. Transcripts come from a sidecar
``.txt`` or ``.lab`` file with the same stem (``.txt`` wins), or from a list's ``text`` column.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audiolm.audio.media import MEDIA_EXTENSIONS, display_path
from audiolm.errors import DataError, MissingFileError

TRANSCRIPT_EXTENSIONS = (".txt", ".lab")
PATH_COLUMNS = ("path", "audio_path", "audio", "file")
TEXT_COLUMNS = ("text", "transcript")
CLIP_TOLERANCE_S = 1.0  # a file at most this much longer than its clip is taken to be the clip already


@dataclass
class SourceItem:
    path: Path  # the media file
    id: str  # unique within the corpus, printable (undecodable name bytes escaped)
    speaker: str = ""
    group: str = ""
    text: str | None = None  # a transcript or caption: the item is then one utterance
    offset: float = 0.0  # seconds into the file
    duration: float | None = None  # seconds from offset; None: to the end
    clip: bool = False  # [offset, offset + duration] is a clip of a longer file, unless the file is that clip
    extra: dict[str, Any] = field(default_factory=dict)

    def identity(self) -> dict[str, Any]:
        """Everything that shapes this item's output, its file's size and mtime included."""
        try:
            st = self.path.stat()
            stamp = f"{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            stamp = "missing"
        return {
            "path": display_path(self.path.resolve()),
            "stamp": stamp,
            "id": self.id,
            "speaker": self.speaker,
            "group": self.group,
            "text": self.text,
            "offset": self.offset,
            "duration": self.duration,
            "clip": self.clip,
            "extra": self.extra,
        }

    def window(self, file_seconds: float | None) -> tuple[float, float | None, str]:
        """(offset, duration, how) to read from the file: a clip is cut from its file unless the file already
        is the clip (at most ``CLIP_TOLERANCE_S`` longer than it, or shorter), which is read from its start."""
        if self.clip and file_seconds is not None and file_seconds <= (self.duration or 0) + CLIP_TOLERANCE_S:
            return 0.0, None, "file is the clip"
        return self.offset, self.duration, "cut from file" if self.clip else ""


@dataclass
class Sources:
    name: str  # names the prepared folder
    origin: str  # what was read, for the report
    items: list[SourceItem] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"path", "reason"}
    warnings: list[dict[str, str]] = field(default_factory=list)  # {"path", "message"}
    ignored: list[str] = field(default_factory=list)  # files that are neither media nor transcripts


def read_transcript(path: Path, sources: Sources) -> str:
    """A sidecar transcript as one line of text. Bytes that are not UTF-8 become U+FFFD and a warning."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        text = raw.decode("utf-8", errors="replace").lstrip("\ufeff")
        sources.warnings.append(
            {
                "path": display_path(path),
                "message": (
                    f"transcript is not valid UTF-8 (byte 0x{raw[e.start]:02x} at offset {e.start}); undecodable bytes "
                    f"were replaced by U+FFFD. Re-save it as UTF-8 to keep those characters."
                ),
            }
        )
    return " ".join(text.split())


def _sidecar_text(media: Path, sources: Sources) -> str | None:
    for ext in TRANSCRIPT_EXTENSIONS:
        sidecar = media.with_suffix(ext)
        if sidecar.is_file():
            return read_transcript(sidecar, sources)
    return None


def unique_ids(items: list[SourceItem]) -> None:
    """Stems shared by two files (a.wav beside a.mp4) get their extension appended; later repeats a counter."""
    seen: dict[str, int] = {}
    for item in items:
        seen[item.id] = seen.get(item.id, 0) + 1
    taken: set[str] = set()
    for item in items:
        if seen[item.id] > 1:
            item.id = f"{item.id}{item.path.suffix}"
        base, n = item.id, 1
        while item.id in taken:
            n += 1
            item.id = f"{base}~{n}"
        taken.add(item.id)


def scan_folder(root: str | Path, exclude: Path | None = None) -> Sources:
    """Every media file under ``root`` (except under ``exclude``, e.g. the prepared cache)."""
    root = Path(root)
    if not root.is_dir():
        raise MissingFileError(
            f"data folder not found: {root}. Set data.root=/path/to/audio (a folder of audio or "
            f"video files; sub-folders {{group}}/{{speaker}}/ name groups and speakers)."
        )
    excluded = exclude.resolve() if exclude is not None else None
    sources = Sources(name=root.resolve().name or "root", origin=display_path(root.resolve()))
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if excluded is not None and path.resolve().is_relative_to(excluded):
            continue
        suffix = path.suffix.lower()
        if suffix in TRANSCRIPT_EXTENSIONS:  # read beside their media file
            continue
        if suffix not in MEDIA_EXTENSIONS:
            sources.ignored.append(display_path(path.relative_to(root)))
            continue
        rel = path.relative_to(root)
        folders = [display_path(p) for p in rel.parent.parts]
        group, speaker = (folders[0], folders[1]) if len(folders) >= 2 else ("", folders[0] if folders else "")
        sources.items.append(
            SourceItem(
                path=path,
                id=display_path(rel.with_suffix("")),
                speaker=speaker,
                group=group,
                text=_sidecar_text(path, sources),
            )
        )
    unique_ids(sources.items)
    return sources


def read_rows(path: Path) -> list[tuple[int, dict[str, Any] | str]]:
    """(line number, row) of a CSV (header row) or JSONL file; a row that cannot be parsed is its error text."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{path} is not UTF-8 text (byte at offset {e.start}); save it as UTF-8") from None
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        return [(reader.line_num, {k: v for k, v in row.items() if k is not None}) for row in reader]
    rows: list[tuple[int, dict[str, Any] | str]] = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                row = json.loads(line)
                rows.append((n, row if isinstance(row, dict) else "not a JSON object"))
            except json.JSONDecodeError as e:
                rows.append((n, f"not valid JSON ({e.msg})"))
    return rows


def _number(row: dict[str, Any], key: str) -> float | None:
    value = row.get(key)
    if value in (None, ""):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key}={value!r} is not a number") from None


def read_media_list(path: str | Path) -> Sources:
    """A CSV (with a header row) or JSONL list of media files: a ``path`` column (relative paths are
    relative to the list's folder); optional ``id``, ``speaker``, ``group``, ``text``, ``offset`` and
    ``duration`` (seconds); every other column is kept in the manifest as an extra."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(
            f"media list not found: {path}. Set data.path=/path/to/list.csv (or .jsonl) with a "
            f"'path' column naming one audio or video file per row."
        )
    sources = Sources(name=path.stem, origin=display_path(path.resolve()))
    for line, row in read_rows(path):
        where = f"{display_path(path)}:{line}"
        if isinstance(row, str):
            sources.skipped.append({"path": where, "reason": row})
            continue
        column = next((c for c in PATH_COLUMNS if row.get(c)), None)
        if column is None:
            sources.skipped.append({"path": where, "reason": f"no media path: set one of the columns {PATH_COLUMNS}"})
            continue
        media = Path(str(row[column])).expanduser()
        media = media if media.is_absolute() else path.parent / media
        text_col = next((c for c in TEXT_COLUMNS if row.get(c) not in (None, "")), None)
        try:
            offset, duration = _number(row, "offset") or 0.0, _number(row, "duration")
        except ValueError as e:
            sources.skipped.append({"path": where, "reason": str(e)})
            continue
        used = {column, "id", "speaker", "group", "offset", "duration", *TEXT_COLUMNS}
        sources.items.append(
            SourceItem(
                path=media,
                id=str(row.get("id") or display_path(Path(str(row[column])).with_suffix(""))),
                speaker=str(row.get("speaker") or ""),
                group=str(row.get("group") or ""),
                text=" ".join(str(row[text_col]).split()) if text_col else _sidecar_text(media, sources),
                offset=offset,
                duration=duration,
                extra={k: v for k, v in row.items() if k not in used},
            )
        )
    unique_ids(sources.items)
    return sources
