"""The codec preview's report: the markdown table (``preview.md``) and the plot (``preview.png``).

Both show only the metrics the report holds (no SI-SDR for a codec that rebuilds the phase, no WER
without transcripts, no judge scores with ``preview.judges=[]``). Scores the judges give the original
clips (DNSMOS, WER: the ceiling of what any round trip can reach) are the ``input`` row of the table
and a dashed line in the plot.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

MAX_NOTES = 8  # judge notes listed in the table; the rest are in preview.json

# The metrics a report may hold, in table order: (key, column title, plot label, format).
# ↑: higher is better; ↓: lower is better.
METRICS = (
    ("si_sdr_db", "SI-SDR dB ↑", "SI-SDR (dB) ↑", ".2f"),
    ("log_mel_distance", "log-mel dist ↓", "log-mel distance ↓", ".3f"),
    ("stoi", "STOI ↑", "STOI ↑", ".3f"),
    ("pesq", "PESQ ↑", "PESQ (wide band) ↑", ".2f"),
    ("dnsmos_ovrl", "DNSMOS OVRL ↑", "DNSMOS OVRL ↑", ".2f"),
    ("dnsmos_p808", "DNSMOS P.808 ↑", "DNSMOS P.808 ↑", ".2f"),
    ("wer", "WER ↓", "WER ↓", ".3f"),
)
LEGEND = "↑ higher is better, ↓ lower is better."
INTRUSIVE_LEGEND = " STOI and PESQ: each round trip against its input."
INPUT_LEGEND = " The `input` row: the original clips through the same judges (the ceiling of DNSMOS and WER)."


def metrics(report: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The entries of ``METRICS`` that this report holds."""
    first = next(iter(report["summary"].values()))
    return [m for m in METRICS if m[0] in first]


def _cell(value: float | None, fmt: str) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:{fmt}}"


def markdown_table(report: dict[str, Any]) -> str:
    codec = ", ".join(f"{k}={v}" for k, v in report["codec"].items() if k != "codec")
    shown = metrics(report)
    lines = [
        f"{report['codec'].get('codec')} ({codec}): round trip of {len(report['clips'])} clip(s), means.",
        "",
        "| n_q | kbps | " + " | ".join(title for _, title, _, _ in shown) + " |",
        "|---|---|" + "---|" * len(shown),
    ]
    if report.get("input"):
        cells = " | ".join(_cell(report["input"].get(key), fmt) for key, _, _, fmt in shown)
        lines.append(f"| input | — | {cells} |")
    for n, s in report["summary"].items():
        cells = " | ".join(_cell(s[key], fmt) for key, _, _, fmt in shown)
        lines.append(f"| {n} | {s['kbps']:.2f} | {cells} |")
    lines.append("")
    keys = {key for key, *_ in shown}
    lines.append(
        LEGEND + (INTRUSIVE_LEGEND if {"stoi", "pesq"} & keys else "") + (INPUT_LEGEND if report.get("input") else "")
    )
    lines += [f"- {note}" for note in report.get("notes", [])]
    judged = report.get("judge_notes", [])
    lines += [f"- {note}" for note in judged[:MAX_NOTES]]
    if len(judged) > MAX_NOTES:
        lines.append(f"- ... and {len(judged) - MAX_NOTES} more judge note(s) in preview.json (judge_notes)")
    return "\n".join(lines) + "\n"


def plot(report: dict[str, Any], path: Path) -> None:
    """One panel per metric against ``n_q``: each clip (grey), the mean, and the input's score (dashed)."""
    import matplotlib

    matplotlib.use("Agg")  # files only; no display on servers
    import matplotlib.pyplot as plt

    levels = [int(n) for n in report["summary"]]
    shown = metrics(report)
    cols = min(4, len(shown))
    rows = math.ceil(len(shown) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.3 * rows), constrained_layout=True, squeeze=False)
    for ax, (key, _, label, _) in zip(axes.flat, shown, strict=False):
        for clip in report["clips"].values():
            points = [(n, clip["scores"][str(n)].get(key)) for n in levels]
            points = [(n, v) for n, v in points if v is not None]
            if points:
                ax.plot(*zip(*points, strict=True), color="0.75", marker=".", lw=0.8)
        ax.plot(levels, [report["summary"][str(n)][key] for n in levels], color="C0", marker="o", lw=2, label="mean")
        if key in report.get("input", {}):
            ax.axhline(report["input"][key], color="C3", ls="--", lw=1.2, label="input (ceiling)")
        ax.set_xlabel("n_q (levels decoded)")
        ax.set_ylabel(label)
        ax.set_xticks(levels)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(shown) :]:
        ax.set_visible(False)
    fig.suptitle(report["codec"].get("codec", "codec"))
    fig.savefig(path, dpi=120)
    plt.close(fig)
