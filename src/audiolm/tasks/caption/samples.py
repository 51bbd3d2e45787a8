"""Caption held-out clips and score them: what ``eval.py`` does with a captioner checkpoint.

Writes, under ``out_dir``: ``captions.json`` (settings, metrics, notes on skipped metrics, and
one row per clip: id, audio file, prediction, reference) and ``captions.md`` (the same as
tables). Returns them as ``Samples`` for the eval report.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from audiolm.data.caption import CaptionDataModule, CaptionDataset, collate_captions
from audiolm.metrics.caption import caption_metrics
from audiolm.tasks.base import Samples
from audiolm.tasks.caption.model import Captioner

log = logging.getLogger(__name__)
SILENT_PEAK = 1e-4  # below -80 dBFS


def write_caption_samples(
    model: Captioner,
    datamodule: CaptionDataModule,
    out_dir: Path,
    n_samples: int | None,
    batch_size: int,
    seed: int,
    java_metrics: bool = True,
    **generation,
) -> Samples:
    """Caption the first ``n_samples`` held-out clips (all with None) with ``generation`` settings."""
    datamodule.setup("validate")
    clips = datamodule.val_clips[:n_samples] if n_samples else datamodule.val_clips
    loader = DataLoader(CaptionDataset(clips), batch_size=batch_size, collate_fn=collate_captions)
    torch.manual_seed(seed)  # sampling draws from the global generator inside transformers' generate
    rows = []
    for batch in loader:
        wav, lengths = batch["wav"].to(model.device), batch["lengths"].to(model.device)
        predictions = model.caption(wav, lengths, **generation)
        peaks = batch["wav"].abs().amax(dim=1)
        for k, clip in enumerate(clips[len(rows) : len(rows) + len(predictions)]):
            rows.append(
                {
                    "id": clip.id,
                    "audio": clip.path,
                    "offset": clip.offset,
                    "seconds": round(int(batch["lengths"][k]) / datamodule.sample_rate, 3),
                    "prediction": predictions[k],
                    "reference": clip.caption,
                    "silent": bool(peaks[k] < SILENT_PEAK),
                }
            )
    predictions, references = [r["prediction"] for r in rows], [[r["reference"]] for r in rows]
    scores, notes = caption_metrics(predictions, references, java=java_metrics)
    silent = sum(r["silent"] for r in rows)
    if silent:
        notes.append(f"{silent} clip(s) are silent (peak below {SILENT_PEAK:g}); their rows say silent: true")
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = {"n_clips": len(rows), "seed": seed, **generation}
    (out_dir / "captions.json").write_text(
        json.dumps({"settings": settings, "metrics": scores, "notes": notes, "captions": rows}, indent=2)
    )
    (out_dir / "captions.md").write_text(_markdown(settings, scores, notes, rows))
    for note in notes:
        log.warning(note)
    return Samples(rows, {f"caption/{k}": v for k, v in scores.items()}, notes)


def _markdown(settings: dict, scores: dict, notes: list[str], rows: list[dict]) -> str:
    lines = [
        "# Captions",
        "",
        "Settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()),
        "",
        "| metric | value |",
        "|---|---:|",
    ]
    lines += [f"| {k} | {v:.4f} |" for k, v in scores.items()]
    lines += [""] + [f"- {n}" for n in notes] + ["", "| id | prediction | reference |", "|---|---|---|"]
    lines += [f"| {r['id']} | {_cell(r['prediction'])} | {_cell(r['reference'])} |" for r in rows]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
