"""Prepare corpora and print where their manifest is (point ``data=manifest data.path`` at it):

    python -m audiolm.cli.prepare synthetic --root data --n 800    # the espeak-ng corpus of data=synthetic
    python -m audiolm.cli.prepare folder /path/to/audio [--segment-seconds 10 --split silence ...]
    python -m audiolm.cli.prepare media list.csv|list.jsonl        # the media files a list names (data=media)
    python -m audiolm.cli.prepare musiccaps --csv musiccaps-public.csv --audio-dir clips/

Each prints a per-speaker summary with the train/val split a run makes of it (``audiolm.data.split``,
at ``--val-percent``, the run's ``data.val_percent``), what was dropped or skipped and why, and the
manifest's path.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from dataclasses import fields
from pathlib import Path

from rich.console import Console
from rich.table import Table

from audiolm.data.corpora.musiccaps import read_musiccaps
from audiolm.data.corpora.speech import N_UTTERANCES, synthesize_corpus
from audiolm.data.manifest import read_manifest
from audiolm.data.prepare.pipeline import REPORT, PrepareOptions, prepare
from audiolm.data.prepare.sources import Sources, read_media_list, scan_folder
from audiolm.data.split import VAL_PERCENT, check_val_percent, side_of
from audiolm.errors import AudiolmError


def summary_rows(manifest: Path, val_percent: float = VAL_PERCENT) -> list[tuple[str, int, float, int, int]]:
    """(speaker, utterances, hours, train, val) per speaker, then a ``total`` row. The split is the one a run
    makes (``audiolm.data.split``): a row's split or group column, else a hash of its id."""
    rows = read_manifest(manifest)
    sides = [side_of(r.id, val_percent, r.extra) for r in rows]
    speakers = sorted({r.speaker or "-" for r in rows})  # rows without a speaker count under "-"
    out = []
    for name in [*speakers, "total"]:
        picked = [k for k, r in enumerate(rows) if name == "total" or (r.speaker or "-") == name]
        counts = Counter(sides[k] for k in picked)
        out.append((name, len(picked), sum(rows[k].duration for k in picked) / 3600, counts["train"], counts["val"]))
    return out


def summary_table(manifest: Path, val_percent: float = VAL_PERCENT) -> Table:
    """Per-speaker utterance counts, hours and train/val split, with a total row."""
    rows = summary_rows(manifest, val_percent)
    table = Table(
        title=f"{manifest.parent.name}: {rows[-1][1]} utterances (val: split column, else {val_percent:g}% by id hash)"
    )
    for col in ("speaker", "utterances", "hours", "train", "val"):
        table.add_column(col, justify="left" if col == "speaker" else "right")
    for name, n, hours, train, val in rows:
        table.add_row(name, str(n), f"{hours:.3f}", str(train), str(val), end_section=name == rows[-2][0])
    return table


def report_lines(report: dict) -> list[str]:
    """Drop, skip and warning counts of a prepare report, with the first few reasons."""
    c = report["counts"]
    lines = [
        f"{c['files']} media file(s): {c['files_used']} used, {c['files_skipped']} skipped; "
        f"{c['segments']} segment(s) kept ({c['hours']:.3f} h), {c['segments_dropped']} dropped"
    ]
    for label, key in (("dropped", "dropped_by_reason"), ("skipped", "skipped_by_reason")):
        if c[key]:
            lines.append(f"  {label}: " + ", ".join(f"{n} {k}" for k, n in sorted(c[key].items(), key=lambda x: -x[1])))
    for s in report["skipped_files"][:5]:
        lines.append(f"  skipped {s['path']}: {s['reason']}")
    for w in report["warnings"][:5]:
        lines.append(f"  warning {w['path']}: {w['message']}")
    if c["ignored_files"]:
        lines.append(f"  ignored {c['ignored_files']} file(s) that are not media, e.g. {report['ignored_files'][:3]}")
    return lines


def _add_prepare_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--cache-dir", default="data/prepared", help="folder that receives <name>-<hash>/ (default: data/prepared)"
    )
    for f in fields(PrepareOptions):
        kind = float if "float" in str(f.type) else int if "int" in str(f.type) else str
        p.add_argument(
            f"--{f.name.replace('_', '-')}",
            type=kind,
            default=f.default,
            help=f"data.prepare.{f.name} (default: {f.default})",
        )
    p.add_argument("--no-loudness", action="store_true", help="keep levels (loudness_lufs=null)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _options(args: argparse.Namespace) -> PrepareOptions:
    values = {f.name: getattr(args, f.name) for f in fields(PrepareOptions)}
    return PrepareOptions(**{**values, **({"loudness_lufs": None} if args.no_loudness else {})})


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m audiolm.cli.prepare", description="Prepare a corpus and print where its manifest is."
    )
    sub = parser.add_subparsers(dest="corpus", required=True)
    emb = sub.add_parser(
        "synthetic", help="synthesise the English speech corpus of data=synthetic with espeak-ng (cached)"
    )
    emb.add_argument("--root", default="data", help="folder that receives embedded-<hash>/ (default: data)")
    emb.add_argument("--n", type=int, default=N_UTTERANCES, help=f"number of utterances (default: {N_UTTERANCES})")
    emb.add_argument("--sample-rate", type=int, default=16000)
    emb.add_argument("--seed", type=int, default=0, help="seed of the sentence generator")
    emb.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1), help="parallel espeak-ng processes")
    emb.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    folder = sub.add_parser("folder", help="every audio/video file under a folder ({group}/{speaker}/... layout)")
    folder.add_argument("root", type=Path)
    media = sub.add_parser("media", help="the media files a CSV/JSONL list names (a 'path' column), as data=media")
    media.add_argument("list", type=Path)
    caps = sub.add_parser("musiccaps", help="a MusicCaps-format CSV over local audio files")
    caps.add_argument("--csv", type=Path, required=True)
    caps.add_argument("--audio-dir", type=Path, required=True)
    for p in (folder, media, caps):
        _add_prepare_options(p)
    for p in (emb, folder, media, caps):
        p.add_argument(
            "--val-percent",
            type=float,
            default=VAL_PERCENT,
            help=f"data.val_percent the summary splits by (default: {VAL_PERCENT:g})",
        )
    emb.set_defaults(
        make=lambda a: synthesize_corpus(
            a.root,
            n_utterances=a.n,
            sample_rate=a.sample_rate,
            seed=a.seed,
            workers=a.workers,
            progress=not a.no_progress,
        )
    )
    folder.set_defaults(make=lambda a: _prepare(a, scan_folder(a.root, exclude=Path(a.cache_dir))))
    media.set_defaults(make=lambda a: _prepare(a, read_media_list(a.list)))
    caps.set_defaults(make=lambda a: _prepare(a, read_musiccaps(a.csv, a.audio_dir)))
    return parser


def _prepare(args: argparse.Namespace, sources: Sources) -> Path:
    return prepare(sources, args.cache_dir, _options(args), progress=not args.no_progress)


def main(argv: list[str] | None = None) -> Path:
    args = _parser().parse_args(argv)
    try:
        check_val_percent(args.val_percent, "--val-percent")
        manifest = args.make(args)
    except AudiolmError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    console = Console()
    console.print(summary_table(manifest, args.val_percent))
    report = manifest.parent / REPORT
    if report.is_file():
        for line in report_lines(json.loads(report.read_text())):
            console.print(line, markup=False, highlight=False)
        console.print(f"report: [bold]{report}[/bold]")
    console.print(f"manifest: [bold]{manifest}[/bold]")
    return manifest


if __name__ == "__main__":
    main()
