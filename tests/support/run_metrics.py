"""What a finished run logged, read back from its CSV logger."""

from __future__ import annotations

import csv
from pathlib import Path


def train_losses(run_dir: Path) -> dict[int, float]:
    """step -> train/nll of the one metrics.csv under ``run_dir``."""
    (metrics,) = run_dir.glob("**/metrics.csv")
    with metrics.open() as f:
        return {int(r["step"]): float(r["train/nll"]) for r in csv.DictReader(f) if r.get("train/nll")}
