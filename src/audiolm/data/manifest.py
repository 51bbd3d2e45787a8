"""Manifests: the one corpus format. JSON lines, one utterance per line.

Required keys: ``path`` (audio file, absolute or relative to the manifest's folder) and
``duration`` (seconds). Optional: ``id``, ``speaker``, ``text``, ``offset`` (seconds into the file)
and any extra key, which is kept as is. Users can read and write these files by hand.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from audiolm.errors import DataError, MissingFileError

REQUIRED = ("path", "duration")


@dataclass
class Utterance:
    path: str
    duration: float
    id: str = ""
    speaker: str = ""
    text: str = ""
    offset: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.id:
            self.id = f"{self.path}@{self.offset:.3f}" if self.offset else self.path

    def to_json(self) -> dict[str, Any]:
        row = asdict(self)
        row.update(row.pop("extra"))
        return row

    def resolve(self, root: Path) -> Path:
        """Absolute audio path; relative paths are relative to the manifest's folder."""
        p = Path(self.path)
        return p if p.is_absolute() else root / p


def read_manifest(path: str | Path) -> list[Utterance]:
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(
            f"manifest not found: {path}. Point data.path (data=manifest) at a JSON-lines file "
            f'with one {{"path": ..., "duration": ...}} object per line.'
        )
    known = {"path", "duration", "id", "speaker", "text", "offset"}
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{n}: not valid JSON ({e.msg})") from None
        missing = [k for k in REQUIRED if k not in row]
        if missing:
            raise DataError(f"{path}:{n}: missing key(s) {missing}; every line needs {list(REQUIRED)}")
        extra = {k: v for k, v in row.items() if k not in known}
        rows.append(Utterance(**{k: v for k, v in row.items() if k in known}, extra=extra))
    return rows


def write_manifest(path: str | Path, rows: Iterable[Utterance]) -> Path:
    """Write atomically: a reader never sees a half-written manifest."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".partial")
    with tmp.open("w") as f:
        for row in rows:
            f.write(json.dumps(row.to_json(), ensure_ascii=False) + "\n")
    tmp.replace(path)
    return path
