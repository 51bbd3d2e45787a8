"""The run picker: what lies under the runs root, and what a loaded run is.

Only run folders (``checkpoints/last.ckpt`` inside) and ``.safetensors`` exports under the runs root
are listed, and a choice that arrives from the page is resolved and refused unless it is still
under the root (``..``, absolute paths and symlinks that lead out are refused): the page never
names an arbitrary path on the server.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from audiolm.errors import AudiolmError
from audiolm.reports import HEADLINE

CHECKPOINT = Path("checkpoints") / "last.ckpt"
EXPORT_SUFFIX = ".safetensors"
MAX_METRICS = 12  # val metrics shown per run; the csv log has them all
SKIP_FOLDERS = {"csv", "tensorboard", "samples", "wandb", ".hydra"}  # inside a run: logs, never runs or exports


def list_runs(root: Path) -> list[str]:
    """Run folders and exports under ``root``, as paths relative to it (sorted; symlinks not followed)."""
    root = Path(root)
    found = []
    for folder, subfolders, files in os.walk(root):
        here = Path(folder)
        if (here / CHECKPOINT).is_file():
            found.append(here.relative_to(root).as_posix())
        found += [(here / f).relative_to(root).as_posix() for f in files if f.endswith(EXPORT_SUFFIX)]
        subfolders[:] = sorted(d for d in subfolders if d not in SKIP_FOLDERS)
    return sorted(found)


def resolve_choice(root: Path, choice: str | None) -> Path:
    """The run or export ``choice`` (relative to ``root``) as a path, refused unless it lies under ``root``."""
    if not choice:
        raise AudiolmError(f"no run chosen: pick a run folder or an export under {root} in the Model tab")
    base = Path(root).resolve()
    path = (base / choice).resolve()
    if not path.is_relative_to(base):
        raise AudiolmError(
            f"{choice} is not under the runs root {root}: the page only loads runs from there (start the UI "
            f"with --runs-root to serve another folder)"
        )
    if not (path.suffix == EXPORT_SUFFIX and path.is_file()) and not (path / CHECKPOINT).is_file():
        raise AudiolmError(
            f"{choice} is neither a run folder (with {CHECKPOINT}) nor a {EXPORT_SUFFIX} export under {root}; "
            f"press Refresh to list what is there"
        )
    return path


def last_metrics(run_dir: Path) -> tuple[int | None, dict[str, float]]:
    """The last logged step and the latest value of every ``val/*`` metric in the run's ``csv/metrics.csv``
    (None and {} when the run logged no csv)."""
    path = run_dir / "csv" / "metrics.csv"
    if not path.is_file():
        return None, {}
    step, latest = None, {}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            if row.get("step"):
                step = int(float(row["step"]))
            latest.update({k: float(v) for k, v in row.items() if k.startswith("val/") and v})
    return step, latest


def _millions(module: Any) -> str:
    return f"{sum(p.numel() for p in module.parameters()) / 1e6:.2f} M"


def _name(node: Any) -> str:
    """The class a config node builds (``_target_``'s last part)."""
    return str(node.get("_target_", "?")).rsplit(".", 1)[-1] if node is not None else "—"


def describe(choice: str, path: Path, model: Any, device: str) -> str:
    """What the loaded run is, as markdown: task, codec, backbone, size, steps and validation metrics."""
    cfg = model.config
    lines = [f"**{choice}** on {device}", ""]
    lines.append(f"- task: {_name(cfg.task)} → {type(model).__name__}, answers `{model.Request.__name__}`")
    codec = getattr(model, "codec", None)
    if codec is not None:
        lines.append(
            f"- codec: {type(codec).__name__}, {codec.n_codebooks} levels x {codec.codebook_size} codes at "
            f"{codec.frame_rate:g} frames/s, {codec.sample_rate} Hz"
        )
    if getattr(model, "backbone", None) is not None:  # the captioner's LLM is one of its parts instead
        size = ", ".join(f"{k}={cfg.model[k]}" for k in ("hidden_size", "num_layers") if k in cfg.model)
        lines.append(f"- backbone: {type(model.backbone).__name__} ({size})")
    parts = ", ".join(f"{name} ({type(part).__name__}, {_millions(part)})" for name, part in model.named_children())
    lines.append(f"- parameters: {_millions(model)} in all; parts: {parts}")
    if path.suffix == EXPORT_SUFFIX:
        lines.append("- an export: its training log is not part of it")
        return "\n".join(lines)
    step, metrics = last_metrics(path)
    lines.append(f"- steps trained: {step if step is not None else '— (no csv log)'}")
    keys = [k for k in HEADLINE if k in metrics] + sorted(k for k in metrics if k not in HEADLINE)
    if keys:
        lines += ["", "| validation metric | last value |", "|---|---|"]
        lines += [f"| {k} | {metrics[k]:.4f} |" for k in keys[:MAX_METRICS]]
        if len(keys) > MAX_METRICS:
            lines.append(f"\n{len(keys) - MAX_METRICS} more in {choice}/csv/metrics.csv")
    return "\n".join(lines)
