"""Token store: the codes of one corpus under one codec config, tokenised once, memory-mapped after.

Layout under a store root (one root per corpus)::

    {root}/{key}/                  key = store_key(codec.config_dict())
        meta.json                  format version, codec config, Q, K, frame_rate, sample_rate, dtype,
                                   corpus fingerprint; ``complete: true`` once every utterance is in
        codec_state.safetensors    fitted state of a codec with ``needs_fit``
        shard-00000.npy            1-D codes; item i holds elements [frame_offset*Q, (frame_offset+n_frames)*Q),
                                   its codes [Q, F] in C order, so one item is one contiguous slice
        shard-00000.json           index rows of that shard: id, n_frames, frame_offset and the manifest
                                   fields path (resolved), duration, speaker, text, offset, extra
        tokenize_report.json       utterances that were skipped, with the reason
        .lock                      held by the one writer

A shard is complete once its index exists: data and index are each written under a ``.partial``
name and renamed, data first, index last. Anything else in the folder is debris from a crash.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from audiolm.errors import DataError, MissingFileError, StoreError

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
META = "meta.json"
CODEC_STATE = "codec_state.safetensors"
REPORT = "tokenize_report.json"
_SHARD_RE = re.compile(r"^shard-(\d{5})\.(npy|json)$")
# meta.json fields that must agree between a store and the run that opens or extends it.
IDENTITY = (
    "format_version",
    "key",
    "codec",
    "n_codebooks",
    "codebook_size",
    "frame_rate",
    "sample_rate",
    "dtype",
    "corpus",
)


def canonical_json(obj: Any) -> str:
    """One spelling per value: sorted keys, no spaces; tuples become lists, other objects ``str``."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)


def store_key(config: dict[str, Any]) -> str:
    """Short stable hex name of a codec config; equal configs give equal keys across runs and machines."""
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()[:16]


def codes_dtype(codebook_size: int) -> np.dtype:
    """Smallest dtype that holds codes 0..K-1: uint8 (K <= 256), uint16 (K <= 65536), else int32."""
    if codebook_size <= 0:
        raise ValueError(f"codebook_size must be positive, got {codebook_size}")
    for dt in (np.uint8, np.uint16):
        if codebook_size - 1 <= np.iinfo(dt).max:
            return np.dtype(dt)
    if codebook_size - 1 <= np.iinfo(np.int32).max:
        return np.dtype(np.int32)
    raise ValueError(f"codebook_size {codebook_size} does not fit int32 codes")


def store_meta(codec: Any, corpus: str = "") -> dict[str, Any]:
    """The identity of a store for ``codec`` (an ``AudioCodec``) and a corpus fingerprint."""
    config = json.loads(canonical_json(codec.config_dict()))  # as it will read back from meta.json
    return {
        "format_version": FORMAT_VERSION,
        "key": store_key(config),
        "codec": config,
        "n_codebooks": int(codec.n_codebooks),
        "codebook_size": int(codec.codebook_size),
        "frame_rate": float(codec.frame_rate),
        "sample_rate": int(codec.sample_rate),
        "dtype": codes_dtype(int(codec.codebook_size)).name,
        "corpus": corpus,
    }


def check_meta(path: Path, have: dict[str, Any], want: dict[str, Any], fields: tuple[str, ...] = IDENTITY) -> None:
    """Raise if the store at ``path`` (meta ``have``) was written for something other than ``want``."""
    wrong = [f for f in fields if f in want and canonical_json(have.get(f)) != canonical_json(want[f])]
    if not wrong:
        return
    lines = []
    for f in wrong:
        if f == "codec" and isinstance(have.get(f), dict):
            a, b = have[f], want[f]
            keys = sorted(k for k in set(a) | set(b) if canonical_json(a.get(k)) != canonical_json(b.get(k)))
            lines += [
                f"  codec.{k}: store has {a.get(k, '<missing>')!r}, this run has {b.get(k, '<missing>')!r}"
                for k in keys
            ]
        else:
            lines.append(f"  {f}: store has {have.get(f, '<missing>')!r}, this run has {want[f]!r}")
    raise DataError(
        f"token store {path} does not match this run:\n" + "\n".join(lines) + "\n"
        f"It was written with another codec config, corpus or store format; codes are never mixed. "
        f"Delete {path} to re-tokenise, or use another store root."
    )


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write(path: Path, write: Any) -> None:
    """``write(file)`` into ``path.partial``, fsync, rename: readers see the old file or the whole new one."""
    tmp = path.with_name(path.name + ".partial")
    try:
        with tmp.open("wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:  # a full disk (or a quota): what was written before stays whole
        tmp.unlink(missing_ok=True)
        free = shutil.disk_usage(path.parent).free
        raise StoreError(
            f"writing {path} failed ({exc}); is the disk full? {free / 2**20:.0f} MB free there. Free some space "
            f"and run again: tokenisation resumes after the last complete shard"
        ) from None
    tmp.replace(path)
    _fsync_dir(path.parent)


def write_json(path: Path, obj: Any) -> None:
    _atomic_write(path, lambda f: f.write((json.dumps(obj, indent=1, ensure_ascii=False) + "\n").encode()))


def read_meta(path: Path) -> dict[str, Any]:
    meta_path = path / META
    try:
        return json.loads(meta_path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"{meta_path} is not valid JSON ({e.msg}); delete {path} to re-tokenise") from None


def _complete_shards(path: Path) -> list[int]:
    """Numbers of the shards whose index exists (and so whose data was renamed into place before it)."""
    return sorted(int(m[1]) for p in path.iterdir() if (m := _SHARD_RE.match(p.name)) and m[2] == "json")


def _shard_paths(path: Path, n: int) -> tuple[Path, Path]:
    return path / f"shard-{n:05d}.npy", path / f"shard-{n:05d}.json"


class TokenStore:
    """Read-only view of a store folder: ``codes(i)`` is a memory-mapped [Q, F] array, nothing is loaded whole.

    ``entries[i]`` is item i's index row (id, shard, n_frames, frame_offset, path, duration, speaker,
    text, offset, extra). Pickling drops the open maps, so DataLoader workers reopen them lazily.
    """

    def __init__(self, path: str | Path, expect_config: dict[str, Any] | None = None, allow_incomplete: bool = False):
        self.path = Path(path)
        if not (self.path / META).is_file():
            raise MissingFileError(
                f"no token store at {self.path} ({META} missing). Build it with "
                f"`python -m audiolm.cli.tokenize --manifest M --store-root R --codec-config C`."
            )
        self.meta = read_meta(self.path)
        check_meta(self.path, self.meta, {"format_version": FORMAT_VERSION})
        if expect_config is not None:
            want = json.loads(canonical_json(expect_config))
            check_meta(self.path, self.meta, {"key": store_key(want), "codec": want})
        if not self.meta.get("complete") and not allow_incomplete:
            raise StoreError(
                f"token store {self.path} is incomplete (tokenisation was interrupted). Rerun "
                f"`python -m audiolm.cli.tokenize` with the same manifest and codec; it resumes."
            )
        self.dtype = np.dtype(self.meta["dtype"])
        self.entries: list[dict[str, Any]] = []
        self._shard_frames: dict[int, int] = {}  # shard number -> frames its index lists, for the size check
        for n in _complete_shards(self.path):
            rows = json.loads(_shard_paths(self.path, n)[1].read_text())
            self.entries += [{**row, "shard": n} for row in rows]
            self._shard_frames[n] = sum(r["n_frames"] for r in rows)
        self.frames_total = sum(e["n_frames"] for e in self.entries)
        self._maps: dict[int, np.ndarray] = {}

    @classmethod
    def find(cls, root: str | Path, codec_config: dict[str, Any], allow_incomplete: bool = False) -> TokenStore:
        """The store of ``codec_config`` under ``root``."""
        return cls(Path(root) / store_key(codec_config), expect_config=codec_config, allow_incomplete=allow_incomplete)

    n_codebooks = property(lambda self: int(self.meta["n_codebooks"]))
    codebook_size = property(lambda self: int(self.meta["codebook_size"]))
    frame_rate = property(lambda self: float(self.meta["frame_rate"]))
    sample_rate = property(lambda self: int(self.meta["sample_rate"]))
    codec_config = property(lambda self: dict(self.meta["codec"]))

    def __len__(self) -> int:
        return len(self.entries)

    def _shard(self, n: int) -> np.ndarray:
        if n not in self._maps:
            data_path = _shard_paths(self.path, n)[0]
            if not data_path.is_file():
                raise MissingFileError(
                    f"{data_path} is missing but its index exists; the store is damaged. "
                    f"Delete {self.path} to re-tokenise."
                )
            arr = np.load(data_path, mmap_mode="r")
            want = self._shard_frames[n] * self.n_codebooks
            if arr.ndim != 1 or arr.shape[0] != want or arr.dtype != self.dtype:
                raise ValueError(
                    f"{data_path} holds {arr.dtype}{list(arr.shape)}, its index says "
                    f"{self.dtype}[{want}]; the store is damaged. Delete {self.path} to re-tokenise."
                )
            self._maps[n] = arr
        return self._maps[n]

    def codes(self, i: int) -> np.ndarray:
        """Item ``i``'s codes: [Q, F], read-only memory map in the store dtype (cast before arithmetic)."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"item {i} out of range for a store of {len(self)} items")
        e = self.entries[i]
        q = self.n_codebooks
        flat = self._shard(e["shard"])[e["frame_offset"] * q : (e["frame_offset"] + e["n_frames"]) * q]
        return flat.reshape(q, e["n_frames"])

    def load_codec_state(self) -> dict[str, torch.Tensor]:
        """The fitted codec state saved with this store; empty when the codec needs none."""
        p = self.path / CODEC_STATE
        return load_file(str(p)) if p.is_file() else {}

    def __getstate__(self) -> dict[str, Any]:
        # A pickled memmap copies its data; workers reopen the shards instead.
        return {**self.__dict__, "_maps": {}}

    def __repr__(self) -> str:
        return (
            f"TokenStore({str(self.path)!r}, items={len(self)}, frames={self.frames_total}, "
            f"Q={self.n_codebooks}, K={self.codebook_size}, complete={bool(self.meta.get('complete'))})"
        )


class StoreWriter:
    """Appends shards to one store folder; crash-safe and resumable.

    Opening takes an exclusive lock (a second writer, e.g. another DDP rank, waits and then finds the
    store done), creates or checks meta.json against ``meta``, deletes half-written shards and
    collects ``done_ids``, the ids already in complete shards.
    """

    def __init__(self, path: str | Path, meta: dict[str, Any], shard_items: int = 256):
        if shard_items < 1:
            raise ValueError(f"shard_items must be >= 1, got {shard_items}")
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.shard_items = shard_items
        self._lock = (self.path / ".lock").open("w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("another process is writing %s; waiting for it", self.path)
            fcntl.flock(self._lock, fcntl.LOCK_EX)
        try:
            self._open(meta)
        except BaseException:
            self.close()
            raise

    def _open(self, meta: dict[str, Any]) -> None:
        if (self.path / META).is_file():
            self.meta = read_meta(self.path)
            check_meta(self.path, self.meta, meta)
        else:
            self.meta = {**meta, "complete": False}
            write_json(self.path / META, self.meta)
        self.dtype = np.dtype(self.meta["dtype"])
        self.n_codebooks = int(self.meta["n_codebooks"])
        self.codebook_size = int(self.meta["codebook_size"])
        done = set(_complete_shards(self.path))
        for p in sorted(self.path.iterdir()):
            m = _SHARD_RE.match(p.name)
            # Debris of an interrupted write: temp files, and data whose index never landed.
            if p.name.endswith(".partial") or (m and int(m[1]) not in done):
                log.info("removing half-written %s", p)
                p.unlink()
        self.done_ids: set[str] = set()
        for n in done:
            self.done_ids.update(row["id"] for row in json.loads(_shard_paths(self.path, n)[1].read_text()))
        self._next_shard = max(done, default=-1) + 1
        self._rows: list[dict[str, Any]] = []
        self._codes: list[np.ndarray] = []

    @property
    def complete(self) -> bool:
        return bool(self.meta.get("complete"))

    def save_codec_state(self, state: dict[str, torch.Tensor]) -> None:
        tensors = {k: v.detach().cpu().contiguous().clone() for k, v in state.items()}
        tmp = self.path / (CODEC_STATE + ".partial")
        save_file(tensors, str(tmp))
        with tmp.open("rb+") as f:
            os.fsync(f.fileno())
        tmp.replace(self.path / CODEC_STATE)
        _fsync_dir(self.path)

    def load_codec_state(self) -> dict[str, torch.Tensor] | None:
        """The saved fitted state, or None if the codec was never fitted into this store."""
        p = self.path / CODEC_STATE
        return load_file(str(p)) if p.is_file() else None

    def add(self, row: dict[str, Any], codes: np.ndarray) -> None:
        """Buffer one item (``row``: id and manifest fields; ``codes``: [Q, F]); full buffers become shards."""
        if row["id"] in self.done_ids:
            raise ValueError(f"utterance id {row['id']!r} is already in {self.path}; ids must be unique")
        codes = np.asarray(codes)
        if codes.ndim != 2 or codes.shape[0] != self.n_codebooks or codes.shape[1] < 1:
            raise ValueError(
                f"codes for {row['id']!r} have shape {list(codes.shape)}, expected "
                f"[Q={self.n_codebooks}, F>=1]; the codec breaks its own n_codebooks"
            )
        lo, hi = int(codes.min()), int(codes.max())
        if lo < 0 or hi >= self.codebook_size:
            # Cast to the store dtype would wrap silently: a codec bug, not a bad file.
            raise ValueError(
                f"codes for {row['id']!r} span [{lo}, {hi}], outside [0, {self.codebook_size}); "
                f"the codec breaks its own codebook_size"
            )
        self._rows.append(row)
        self._codes.append(np.ascontiguousarray(codes, dtype=self.dtype))
        self.done_ids.add(row["id"])
        if len(self._rows) >= self.shard_items:
            self.flush()

    def flush(self) -> None:
        """Write the buffered items as one shard: data renamed into place first, its index last."""
        if not self._rows:
            return
        data_path, index_path = _shard_paths(self.path, self._next_shard)
        index, offset = [], 0
        for row, c in zip(self._rows, self._codes, strict=True):
            index.append(
                {
                    "id": row["id"],
                    "n_frames": int(c.shape[1]),
                    "frame_offset": offset,
                    **{k: v for k, v in row.items() if k != "id"},
                }
            )
            offset += c.shape[1]
        flat = np.concatenate([c.reshape(-1) for c in self._codes])  # each [Q, F] in C order, back to back
        _atomic_write(data_path, lambda f: np.save(f, flat, allow_pickle=False))
        write_json(index_path, index)
        self._next_shard += 1
        self._rows, self._codes = [], []

    def finish(self, **info: Any) -> None:
        """Flush and mark the store complete; ``info`` (e.g. counts) is recorded in meta.json."""
        self.flush()
        self.meta.update(info, complete=True)
        write_json(self.path / META, self.meta)

    def close(self) -> None:
        # Unflushed items are dropped on purpose: they are not in a complete shard and get redone on resume.
        if not self._lock.closed:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
