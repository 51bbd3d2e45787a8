"""Prepare corpora: ``python -m audiolm.cli.prepare embedded --root data --n 400``.

Prints where the manifest is (point ``data.manifest`` at it) and a short summary of the corpus.
"""

from __future__ import annotations

import argparse
import os
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table

from audiolm.data.embedded import synthesize_corpus
from audiolm.data.manifest import read_manifest


def summary_table(manifest: Path) -> Table:
    """Per-speaker utterance counts, hours and train/val split, with a total row."""
    rows = read_manifest(manifest)
    table = Table(title=f"{manifest.parent.name}: {len(rows)} utterances")
    for col in ("speaker", "utterances", "hours", "train", "val"):
        table.add_column(col, justify="left" if col == "speaker" else "right")
    # Rows without a speaker or split (hand-written manifests) still count, under a "-" bucket.
    speakers = sorted({r.speaker or "-" for r in rows})
    for name in [*speakers, "total"]:
        group = rows if name == "total" else [r for r in rows if (r.speaker or "-") == name]
        splits = Counter(str(r.extra.get("split", "-")) for r in group)
        table.add_row(name, str(len(group)), f"{sum(r.duration for r in group) / 3600:.3f}",
                      str(splits["train"]), str(splits["val"]), end_section=name == speakers[-1])
    return table


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(prog="python -m audiolm.cli.prepare",
                                     description="Prepare a corpus and print where its manifest is.")
    sub = parser.add_subparsers(dest="corpus", required=True)
    emb = sub.add_parser("embedded", help="synthesise the built-in English corpus with espeak-ng (cached)")
    emb.add_argument("--root", default="data", help="folder that receives embedded-<hash>/ (default: data)")
    emb.add_argument("--n", type=int, default=400, help="number of utterances (default: 400)")
    emb.add_argument("--sample-rate", type=int, default=16000)
    emb.add_argument("--seed", type=int, default=0, help="seed of the sentence generator")
    emb.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                     help="parallel espeak-ng processes")
    emb.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)

    manifest = synthesize_corpus(args.root, n_utterances=args.n, sample_rate=args.sample_rate, seed=args.seed,
                                 workers=args.workers, progress=not args.no_progress)
    console = Console()
    console.print(summary_table(manifest))
    console.print(f"manifest: [bold]{manifest}[/bold]")
    return manifest


if __name__ == "__main__":
    main()
