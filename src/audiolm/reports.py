"""What a run tells its user at the end: the final metrics, where everything is, and what to run next.

Paths are printed on lines of their own, never inside a table cell, so a terminal never breaks them
and they can be copied as they are.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

# The figures a train summary leads with, when the task logged them.
HEADLINE = ("val/nll", "val/bits_per_token", "val/acc", "val/ar/nll", "val/nar/nll", "val/stop_acc", "train/nll")


def _console() -> Console:
    return Console(soft_wrap=True)


def _table(title: str, metrics: dict[str, float], keys: list[str]) -> Table:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k in keys:
        table.add_row(k, f"{metrics[k]:.4f}")
    return table


def print_summary(metrics: dict[str, float], run_dir: Path) -> None:
    """The end of a train run: its headline metrics, the run folder, and the eval command to run next."""
    console = _console()
    keys = [k for k in HEADLINE if k in metrics] or sorted(metrics)[:8]
    if keys:
        console.print(_table("final metrics", metrics, keys))
    if not any(k.startswith("val/") for k in metrics):
        console.print("note: no validation ran (trainer.limit_val_batches=0?); val/* metrics are missing")
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    console.print(f"run folder: {run_dir}")
    if ckpt.is_file():
        console.print(f"next: python eval.py ckpt={shlex.quote(str(ckpt))}")


def print_report(report: dict[str, Any]) -> None:
    """eval.py's report: every metric, notes on skipped scores, and where the samples are."""
    console = _console()
    console.print(_table("eval", report["metrics"], sorted(report["metrics"])))
    console.print(f"checkpoint: {report['checkpoint']}")
    for note in report["notes"]:
        console.print(f"note: {escape(note)}")
    console.print(f"{len(report['samples'])} samples and metrics.json in {report['samples_dir']}")
