"""Tokenise a manifest into a ``TokenStore``: fit the codec if it needs data, then encode every utterance once.

Bad files (missing, unreadable, empty, shorter than one frame, non-finite samples, or rejected by the
codec) are skipped and listed in ``tokenize_report.json``; everything else goes on. An interrupted run
resumes where its last complete shard ended; a complete store is reused without touching the codec.
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
from pathlib import Path
from typing import Any

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from audiolm.audio.io import load_audio
from audiolm.codecs.base import AudioCodec
from audiolm.data.manifest import Utterance, read_manifest
from audiolm.data.tokens.store import (
    REPORT,
    StoreWriter,
    TokenStore,
    canonical_json,
    check_meta,
    read_meta,
    store_meta,
    write_json,
)
from audiolm.errors import DataError, StoreError

log = logging.getLogger(__name__)

FIT_SEED = 0


def corpus_fingerprint(rows: list[Utterance]) -> str:
    """Hash of the manifest rows, so a store root is never silently shared by two corpora."""
    return hashlib.sha256(canonical_json(sorted(canonical_json(r.to_json()) for r in rows)).encode()).hexdigest()[:16]


def _check_unique(rows: list[Utterance], manifest: Path) -> None:
    seen: set[str] = set()
    dup = []
    for r in rows:
        if r.id in seen:
            dup.append(r.id)
        seen.add(r.id)
    if dup:
        raise DataError(
            f"{manifest}: {len(dup)} duplicate utterance id(s), e.g. {dup[:5]}; the store is keyed by "
            f'id, so give each line a unique "id" (or a distinct path/offset)'
        )


def load_utterance(utt: Utterance, root: Path, codec: AudioCodec) -> tuple[torch.Tensor | None, str]:
    """wav: [1, T] at the codec's rate, or None and why it is unusable.

    The manifest's ``offset`` and ``duration`` define the segment read, so one file can hold many utterances.
    """
    try:
        wav = load_audio(utt.resolve(root), codec.sample_rate, offset=utt.offset, duration=utt.duration)
    except Exception as e:  # any reader error means this one file is unusable, not the corpus
        return None, f"load failed: {type(e).__name__}: {e}"
    min_samples = math.ceil(codec.sample_rate / codec.frame_rate)
    if wav.shape[-1] == 0:
        return None, f"empty: 0 samples (manifest offset={utt.offset}s, duration={utt.duration}s)"
    if wav.shape[-1] < min_samples:
        return None, (
            f"too short: {wav.shape[-1]} samples < one frame ({min_samples} samples at {codec.sample_rate} Hz)"
        )
    if not torch.isfinite(wav).all():
        return None, "non-finite samples (NaN or inf) in the audio"
    return wav, ""


def _fit_clips(rows: list[Utterance], root: Path, codec: AudioCodec, max_seconds: float) -> list[torch.Tensor]:
    """A deterministic sample of the corpus, at most ``max_seconds`` long: clips [1, T]."""
    order = sorted(rows, key=lambda r: r.id)
    random.Random(FIT_SEED).shuffle(order)  # seeded: a rerun fits the same codec from the same audio
    budget = int(max_seconds * codec.sample_rate)
    clips = []
    for utt in order:
        if budget <= 0:
            break
        wav, _ = load_utterance(utt, root, codec)  # unusable files are reported by the encoding pass
        if wav is None:
            continue
        wav = wav[:, :budget]
        clips.append(wav)
        budget -= wav.shape[-1]
    return clips


def _adopt_stored_state(codec: AudioCodec, stored: dict[str, torch.Tensor], path: Path) -> None:
    """Give ``codec`` the state its store was made with. A codec that is already fitted (e.g. from a
    checkpoint) must hold that very state: otherwise the tokens would not mean what the model learned."""
    own = codec.fitted_state()
    if own and (own.keys() != stored.keys() or any(not torch.equal(own[k], stored[k].to(own[k].dtype)) for k in own)):
        raise DataError(
            f"the fitted {type(codec).__name__} state (from the checkpoint) differs from the one the token "
            f"store {path} was made with, so its tokens mean something else to this model. Point "
            f"paths.data_dir at the data the checkpoint was trained on, or delete {path} to re-tokenise "
            f"with the checkpoint's codec."
        )
    codec.load_fitted_state(stored)


def _prepare_codec(
    codec: AudioCodec, writer: StoreWriter, rows: list[Utterance], root: Path, fit_max_seconds: float
) -> None:
    """Give ``codec`` the store's fitted state; a new store takes the codec's own state if it has one
    (a checkpoint's), else the codec is fitted now. The state is saved before any encoding."""
    if not codec.needs_fit:
        return
    state = writer.load_codec_state()
    if state is not None:
        _adopt_stored_state(codec, state, writer.path)
        return
    if codec.fitted_state():
        writer.save_codec_state(codec.fitted_state())
        return
    if writer.done_ids:
        raise StoreError(
            f"{writer.path} holds codes but no {type(codec).__name__} fitted state; the store is "
            f"damaged. Delete {writer.path} to re-tokenise."
        )
    fit_codec(codec, rows, root, fit_max_seconds)
    writer.save_codec_state(codec.fitted_state())


def fit_codec(codec: AudioCodec, rows: list[Utterance], root: Path, max_seconds: float) -> None:
    """Fit ``codec`` on a seeded sample of at most ``max_seconds`` of the corpus ``rows``."""
    clips = _fit_clips(rows, root, codec, max_seconds)
    if not clips:
        raise StoreError(
            f"cannot fit {type(codec).__name__}: no utterance of the manifest could be loaded; "
            f"check the paths in the manifest (relative paths are relative to {root})"
        )
    log.info(
        "fitting %s on %d clips (%.1f s)",
        type(codec).__name__,
        len(clips),
        sum(c.shape[-1] for c in clips) / codec.sample_rate,
    )
    codec.fit(clips)


def _row(utt: Utterance, root: Path) -> dict[str, Any]:
    return {
        "id": utt.id,
        "path": str(utt.resolve(root)),
        "duration": utt.duration,
        "speaker": utt.speaker,
        "text": utt.text,
        "offset": utt.offset,
        "extra": utt.extra,
    }


def _encode(codec: AudioCodec, wavs: list[torch.Tensor], device: str) -> list[torch.Tensor]:
    """Pad wavs [1, T_b] into one batch [B, 1, T_max], encode, trim each item to codes [Q, num_frames(T_b)]."""
    lengths = [w.shape[-1] for w in wavs]
    batch = torch.zeros(len(wavs), 1, max(lengths))
    for b, w in enumerate(wavs):
        batch[b, :, : lengths[b]] = w
    with torch.inference_mode():
        codes = codec.encode(batch.to(device)).cpu()
    if codes.ndim != 3 or codes.shape[0] != len(wavs):
        raise RuntimeError(
            f"{type(codec).__name__}.encode returned shape {list(codes.shape)} for a batch of "
            f"{len(wavs)}; the AudioCodec contract is [B, Q, F]"
        )
    out = []
    for b, n in enumerate(lengths):
        f = codec.num_frames(n)
        if codes.shape[-1] < f:
            raise RuntimeError(
                f"{type(codec).__name__}.encode returned {codes.shape[-1]} frames for {n} samples; "
                f"its num_frames({n}) says {f}"
            )
        out.append(codes[b, :, :f])
    return out


def resolve_device(device: str) -> str:
    """``auto`` becomes ``cuda`` when there is a GPU, else ``cpu``; any other name is kept."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def tokenize_manifest(
    manifest_path: str | Path,
    codec: AudioCodec,
    store_root: str | Path,
    batch_size: int = 16,
    shard_items: int = 256,
    fit_max_seconds: float = 600.0,
    device: str = "auto",
    progress: bool = True,
) -> TokenStore:
    """Encode every utterance of ``manifest_path`` with ``codec`` into ``{store_root}/{store_key}``.

    Reuses a complete store (no encoding), resumes an interrupted one, and leaves ``codec`` fitted when
    it ``needs_fit`` (from the store's saved state, or fitted on at most ``fit_max_seconds`` of the
    corpus). The codec is moved to ``device`` (``auto``: CUDA when there is a GPU) and set to eval mode.
    """
    device = resolve_device(device)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    manifest_path = Path(manifest_path)
    rows = read_manifest(manifest_path)
    if not rows:
        raise ValueError(f"{manifest_path} lists no utterances; nothing to tokenise")
    _check_unique(rows, manifest_path)
    root = manifest_path.parent
    meta = {**store_meta(codec, corpus_fingerprint(rows)), "manifest": str(manifest_path.resolve())}
    path = Path(store_root) / meta["key"]

    # Fast path, no lock: a complete store only needs the codec's state.
    if (path / "meta.json").is_file() and read_meta(path).get("complete"):
        check_meta(path, read_meta(path), meta)
        store = TokenStore(path, expect_config=meta["codec"])
        if codec.needs_fit:
            state = store.load_codec_state()
            if not state:
                raise StoreError(
                    f"{path} is complete but holds no {type(codec).__name__} fitted state; the "
                    f"store is damaged. Delete {path} to re-tokenise."
                )
            _adopt_stored_state(codec, state, path)
        log.info("reusing complete token store %s", path)
        return store

    with StoreWriter(path, meta, shard_items=shard_items) as writer:
        _prepare_codec(codec, writer, rows, root, fit_max_seconds)
        if not writer.complete:  # another writer may have finished while we waited for the lock
            # Codes of a codec that is not batch-invariant would depend on how clips were grouped, so a
            # resumed store would differ from an uninterrupted one: encode those one clip at a time.
            _encode_all(codec, writer, rows, root, batch_size if codec.batch_invariant else 1, device, progress)
    return TokenStore(path, expect_config=meta["codec"])


def _encode_all(
    codec: AudioCodec,
    writer: StoreWriter,
    rows: list[Utterance],
    root: Path,
    batch_size: int,
    device: str,
    progress: bool,
) -> None:
    # Longest first: similar lengths share a batch (little padding) and a batch too big for memory fails at once.
    todo = sorted((r for r in rows if r.id not in writer.done_ids), key=lambda r: (-r.duration, r.id))
    skipped: list[dict[str, str]] = []
    encoded = encode_failed = 0
    first_error = ""
    codec.to(device).eval()
    columns = (TextColumn("tokenising"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=not progress) as bar:
        task = bar.add_task("tokenise", total=len(todo))
        for start in range(0, len(todo), batch_size):
            batch = []
            for utt in todo[start : start + batch_size]:
                wav, why = load_utterance(utt, root, codec)
                if wav is None:
                    skipped.append({"id": utt.id, "path": str(utt.resolve(root)), "reason": why})
                else:
                    batch.append((utt, wav))
            try:
                done = list(zip(batch, _encode(codec, [w for _, w in batch], device), strict=True)) if batch else []
            except Exception:
                # One bad item (or a batch too large for memory) must not cost its neighbours: go one by one.
                done = []
                for utt, wav in batch:
                    try:
                        done.append(((utt, wav), _encode(codec, [wav], device)[0]))
                    except Exception as e:
                        encode_failed += 1
                        first_error = first_error or f"{type(e).__name__}: {e}"
                        skipped.append(
                            {
                                "id": utt.id,
                                "path": str(utt.resolve(root)),
                                "reason": f"encode failed: {type(e).__name__}: {e}",
                            }
                        )
            for (utt, _), c in done:
                writer.add(_row(utt, root), c.numpy())
            encoded += len(done)
            bar.advance(task, min(batch_size, len(todo) - start))
    if encode_failed and not encoded:
        # A codec that rejects everything is broken (wrong device, bad state); do not record a finished, empty store.
        raise StoreError(
            f"{type(codec).__name__} failed to encode all {encode_failed} utterance(s) it was given, "
            f"e.g. {first_error}; nothing was marked complete in {writer.path}"
        )
    write_json(writer.path / REPORT, {"n_items": len(writer.done_ids), "skipped": skipped})
    writer.finish(n_items=len(writer.done_ids), n_skipped=len(skipped))
    if skipped:
        log.warning("skipped %d utterance(s); see %s", len(skipped), writer.path / REPORT)
