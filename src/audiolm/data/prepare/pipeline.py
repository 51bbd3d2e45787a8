"""Prepare media into a corpus: decode -> mono -> resample -> loudness-normalise -> segment -> drop silence.

Each source file is streamed twice, one block in memory at a time (see ``audiolm.audio.media``):
the first pass measures its integrated loudness (ITU-R BS.1770) and sample peak, the second cuts it
into segments and writes those. Loudness is normalised **per file**: one gain per recording keeps
its own dynamics (a quiet passage stays quieter than a loud one) and lets silence be judged against
the recording's loudness, so a pause full of room tone still counts as silence; a transcribed file
is one utterance, so for TTS data this is per utterance anyway. The gain is capped so the peak stays
at -1 dBFS, and a file whose loudness is below the -70 LUFS gate (silent) is skipped.

A frame is silent when it is ``silence_db`` below the file's loudness; a segment whose non-silent share
is under ``min_voiced_share`` is dropped and reported. A file with a transcript (sidecar or column) or
caption becomes one utterance with its text, uncut; one longer than ``max_utterance_seconds`` cannot
keep its text without an alignment, so it is cut like untranscribed audio and the text is dropped
with a warning.

Output, never inside the user's folders: ``{cache_dir}/{name}-{hash of inputs + options}/`` with
``segments/**.flac`` (or wav), ``manifest.jsonl`` (written last, atomically: it exists only complete)
and ``prepare_report.json``. Finished files are recorded in ``parts/`` as they complete, so a killed
run resumes where it stopped, and a finished folder is reused as is.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import math
import re
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from audiolm.audio.loudness import ABSOLUTE_GATE_LUFS, LoudnessMeter
from audiolm.audio.media import display_path, open_media
from audiolm.audio.segment import Cutter, Segment
from audiolm.data.manifest import Utterance, write_manifest
from audiolm.data.prepare.sources import SourceItem, Sources
from audiolm.data.tokens.store import canonical_json, write_json
from audiolm.errors import ConfigError, DataError

RECIPE_VERSION = 1  # bump when a change to this pipeline changes its output for the same options
PEAK_CEILING_DB = -1.0
REPORT = "prepare_report.json"
FORMATS = {"flac": "FLAC", "wav": "WAV"}


@dataclass(frozen=True)
class PrepareOptions:
    """How media becomes a corpus. Each field is the config value ``data.prepare.<field>``."""

    segment_seconds: float = 10.0  # window length (fixed), or the longest segment (silence)
    split: str = "fixed"  # fixed: consecutive windows; silence: cut in pauses
    min_segment_seconds: float = 0.5  # shorter segments (tails, fragments) are dropped
    min_silence_seconds: float = 0.3  # split=silence: a pause at least this long is a cut point
    min_voiced_share: float = 0.5  # drop segments whose non-silent share of frames is below this
    silence_db: float = 35.0  # a frame is silent when this many dB below the file's loudness
    loudness_lufs: float | None = -23.0  # normalise each file to this loudness; null: keep levels
    sample_rate: int | None = None  # output rate; null: each file's own rate
    format: str = "flac"  # flac or wav (16-bit PCM)
    max_utterance_seconds: float = 30.0  # transcribed files up to this long stay one utterance

    def __post_init__(self) -> None:
        checks = {
            "split": self.split in ("fixed", "silence"),
            "format": self.format in FORMATS,
            "segment_seconds": self.segment_seconds > 0,
            "min_segment_seconds": self.min_segment_seconds >= 0,
            "min_silence_seconds": self.min_silence_seconds > 0,
            "silence_db": self.silence_db > 0,
            "min_voiced_share": 0 <= self.min_voiced_share <= 1,
            "sample_rate": self.sample_rate is None or self.sample_rate > 0,
            "max_utterance_seconds": self.max_utterance_seconds > 0,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            hints = {
                "split": "fixed or silence",
                "format": "flac or wav",
                "min_voiced_share": "in [0, 1]",
                "sample_rate": "a positive rate or null",
            }
            raise ConfigError(
                "; ".join(
                    f"data.prepare.{k}={getattr(self, k)!r} is invalid (expected {hints.get(k, 'a positive number')})"
                    for k in bad
                )
            )


def corpus_dir(sources: Sources, cache_dir: str | Path, options: PrepareOptions) -> Path:
    identity = {
        "recipe": RECIPE_VERSION,
        "options": asdict(options),
        "items": [i.identity() for i in sources.items],
        "skipped": sources.skipped,
        "warnings": sources.warnings,
    }
    digest = hashlib.sha256(canonical_json(identity).encode()).hexdigest()[:12]
    return Path(cache_dir) / f"{_slug(sources.name)[-40:]}-{digest}"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "x"


def item_key(item: SourceItem) -> str:
    return f"{_slug(item.id)[-60:]}-{hashlib.sha256(canonical_json(item.identity()).encode()).hexdigest()[:10]}"


def prepare(
    sources: Sources, cache_dir: str | Path, options: PrepareOptions | None = None, progress: bool = True
) -> Path:
    """Prepare (or reuse) the corpus of ``sources`` under ``cache_dir`` and return its manifest.

    Raises ``DataError`` when nothing usable is left; the report then says why for every file.
    """
    options = options or PrepareOptions()
    out = corpus_dir(sources, cache_dir, options)
    manifest = out / "manifest.jsonl"
    if manifest.is_file():
        return manifest
    if not sources.items and not sources.skipped:
        raise DataError(
            f"no media files in {sources.origin}"
            + (f" (ignored {len(sources.ignored)} other files, e.g. {sources.ignored[:3]})" if sources.ignored else "")
        )
    out.mkdir(parents=True, exist_ok=True)
    with (out / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second process (another DDP rank) waits, then finds it done
        if manifest.is_file():
            return manifest
        parts = _prepare_items(sources, out, options, progress)
        report = build_report(sources, options, parts)
        write_json(out / REPORT, report)
        rows = [Utterance(**row) for part in parts for row in part["rows"]]
        if not rows:
            c = report["counts"]
            raise DataError(
                f"no usable audio in {sources.origin}: {c['files_skipped']} file(s) skipped, "
                f"{c['segments_dropped']} segment(s) dropped ({_reasons(c)}); details in {out / REPORT}"
            )
        write_manifest(manifest, rows)
    return manifest


def _reasons(counts: dict[str, Any]) -> str:
    merged = {**counts["skipped_by_reason"], **counts["dropped_by_reason"]}
    return ", ".join(f"{n} {k}" for k, n in sorted(merged.items(), key=lambda kv: -kv[1])) or "none"


def _prepare_items(sources: Sources, out: Path, options: PrepareOptions, progress: bool) -> list[dict[str, Any]]:
    columns = (TextColumn("preparing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    parts = []
    (out / "parts").mkdir(exist_ok=True)
    with Progress(*columns, disable=not progress) as bar:
        task = bar.add_task("prepare", total=len(sources.items))
        for item in sources.items:
            record = out / "parts" / f"{item_key(item)}.json"
            if record.is_file():  # finished by an earlier, interrupted run
                part = json.loads(record.read_text())
            else:
                part = process_item(item, out, options)
                write_json(record, part)
            parts.append(part)
            bar.advance(task)
    return parts


def _measure(item: SourceItem, options: PrepareOptions) -> tuple[LoudnessMeter, dict[str, Any], str]:
    """First pass: loudness, peak and length of the item's audio at the output rate."""
    with open_media(item.path) as media:
        rate = options.sample_rate or media.sample_rate
        offset, duration, how = item.window(media.duration)
        meter = LoudnessMeter(rate)
        for block in media.blocks(rate, offset, duration):
            meter.add(block)
        info = {
            "rate": rate,
            "offset": offset,
            "duration": duration,
            "how": how,
            "backend": media.backend,
            "source_rate": media.sample_rate,
            "channels": media.channels,
        }
        return meter, info, media.stopped_early


def process_item(item: SourceItem, out: Path, options: PrepareOptions) -> dict[str, Any]:
    """Segments of one source item, written under ``out/segments/``; returns its part record:
    ``rows`` (manifest rows), ``dropped`` (segments left out, with reasons), ``skipped`` (why the whole
    item was, or "") and ``warnings``."""
    where = display_path(item.path)
    part: dict[str, Any] = {"source": where, "rows": [], "dropped": [], "skipped": "", "warnings": []}
    try:
        meter, info, stopped = _measure(item, options)
    except DataError as e:
        part["skipped"] = str(e)
        return part
    rate, n = info["rate"], meter.n_samples
    if n == 0:
        window = f" in [{info['offset']:g}, {info['offset'] + (info['duration'] or 0):g}] s" if item.clip else ""
        part["skipped"] = f"no audio decoded{window}" + (f" ({stopped})" if stopped else "")
        return part
    loudness = meter.integrated()
    if loudness <= ABSOLUTE_GATE_LUFS:
        part["skipped"] = f"silent: no 400 ms block reaches the {ABSOLUTE_GATE_LUFS:g} LUFS gate"
        return part
    if stopped:
        part["warnings"].append(f"decoding stopped at {n / rate:.2f} s ({stopped}); kept the audio before it")
    gain_db = 0.0 if options.loudness_lufs is None else options.loudness_lufs - loudness
    gain_db = min(gain_db, PEAK_CEILING_DB - 20 * math.log10(meter.peak))  # no clipping
    rule, text = "whole", item.text
    if item.text is not None and n / rate > options.max_utterance_seconds:
        rule, text = options.split, None
        part["warnings"].append(
            f"transcribed file is {n / rate:.1f} s > data.prepare.max_utterance_seconds="
            f"{options.max_utterance_seconds:g}: cut into segments and its text dropped (a text "
            f"cannot be split without an alignment; split the file into utterances to keep it)"
        )
    elif item.text is None:
        rule = options.split
    cutter = Cutter(
        rate,
        max(loudness - options.silence_db, ABSOLUTE_GATE_LUFS),
        options.segment_seconds,
        options.min_segment_seconds,
        options.min_silence_seconds,
    )
    keep = _Keeper(
        item,
        out,
        options,
        part,
        text,
        gain_db,
        info["offset"],
        {
            "source_path": where,
            "loudness_lufs": round(loudness, 2),
            "gain_db": round(gain_db, 2),
            **({"clip": info["how"]} if info["how"] else {}),
        },
    )
    try:
        with open_media(item.path) as media:
            blocks = media.blocks(rate, info["offset"], info["duration"], max_samples=n)
            for k, seg in enumerate(cutter.rule(rule)(blocks)):
                keep(k, seg)
    except DataError as e:  # the file changed or vanished between the two passes
        part["skipped"], part["rows"] = f"second pass failed: {e}", []
    return part


@dataclass
class _Keeper:
    """Writes a segment of one item and adds its manifest row, or records why it is dropped."""

    item: SourceItem
    out: Path
    options: PrepareOptions
    part: dict[str, Any]
    text: str | None
    gain_db: float
    offset: float
    extra: dict[str, Any]

    def __call__(self, k: int, seg: Segment) -> None:
        opts, start = self.options, round(self.offset + seg.start, 3)
        reason = ""
        if seg.duration < opts.min_segment_seconds:
            reason = f"too short: {seg.duration:.2f} s < data.prepare.min_segment_seconds={opts.min_segment_seconds:g}"
        elif seg.voiced_share < opts.min_voiced_share:
            reason = (
                f"mostly silent: {seg.voiced_share:.0%} non-silent < data.prepare.min_voiced_share="
                f"{opts.min_voiced_share:g}"
            )
        if reason:
            self.part["dropped"].append({"start": start, "duration": round(seg.duration, 3), "reason": reason})
            return
        item = self.item
        rel = Path("segments") / item_key(item) / f"{k:04d}.{opts.format}"
        write_segment(self.out / rel, seg.samples * np.float32(10 ** (self.gain_db / 20)), seg.rate, opts.format)
        utt = Utterance(
            path=str(rel),
            duration=round(seg.duration, 6),
            speaker=item.speaker,
            text=self.text or "",
            id=item.id if self.text is not None else f"{item.id}#{k:04d}",
            extra={
                **item.extra,
                **({"group": item.group} if item.group else {}),
                **self.extra,
                "source_start": start,
                "voiced_share": round(seg.voiced_share, 3),
            },
        )
        self.part["rows"].append(dataclasses.asdict(utt))


def write_segment(path: Path, samples: np.ndarray, rate: int, fmt: str) -> None:
    """16-bit mono audio, written under a temporary name and renamed: a file that exists is complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    sf.write(str(tmp), np.clip(samples, -1.0, 1.0), rate, format=FORMATS[fmt], subtype="PCM_16")
    tmp.replace(path)


def _kind(reason: str) -> str:
    """The short cause at the head of a reason ("mostly silent: 20% ..." -> "mostly silent")."""
    return re.split(r"[:(]", reason, maxsplit=1)[0].strip()


def build_report(sources: Sources, options: PrepareOptions, parts: list[dict[str, Any]]) -> dict[str, Any]:
    skipped = [*sources.skipped, *({"path": p["source"], "reason": p["skipped"]} for p in parts if p["skipped"])]
    dropped = [{"source_path": p["source"], **d} for p in parts for d in p["dropped"]]
    warnings = [*sources.warnings, *({"path": p["source"], "message": w} for p in parts for w in p["warnings"])]
    rows = [r for p in parts for r in p["rows"]]
    counts = {
        "files": len(sources.items),
        "files_used": sum(bool(p["rows"]) for p in parts),
        "files_skipped": len(skipped),
        "segments": len(rows),
        "segments_dropped": len(dropped),
        "hours": round(sum(r["duration"] for r in rows) / 3600, 4),
        "skipped_by_reason": dict(Counter(_kind(s["reason"]) for s in skipped)),
        "dropped_by_reason": dict(Counter(_kind(d["reason"]) for d in dropped)),
        "warnings": len(warnings),
        "ignored_files": len(sources.ignored),
    }
    return {
        "origin": sources.origin,
        "recipe": RECIPE_VERSION,
        "options": asdict(options),
        "counts": counts,
        "skipped_files": skipped,
        "dropped_segments": dropped,
        "warnings": warnings,
        "ignored_files": sources.ignored[:200],
    }
