"""Proof that a recipe learns: train it for a wall-clock budget, judge its checkpoints, draw the curve.

    python benchmarks/learning.py valle --minutes 60 --points 6 --threads 1
    python benchmarks/learning.py tts_parallel --minutes 60 --points 6 --threads 1
    python benchmarks/learning.py lm --minutes 20 --points 4

One ``train.py`` run of the recipe (trainer.max_time = the budget, no step limit, so the learning rate is
held after its warmup) saves a checkpoint every ``minutes / points`` of training time; the samples
callback is off so that training gets the whole budget. A run with the learning rate at 0 gives the
untrained point. Afterwards ``eval.py`` judges every checkpoint on the same held-out items (offline
judges: pocketsphinx WER with an LM of the training texts, resemblyzer similarity, DNSMOS), beside the
reference clips through the same codec, which are the ceiling. Minutes are the Lightning Timer's
training time (validation included). Writes ``benchmarks/results/learning_<recipe>.{md,png,json}``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Recipe:
    overrides: tuple[str, ...]
    prefix: str  # eval's metric prefix
    curves: tuple[tuple[str, str, str], ...]  # (metric, its reference ceiling, axis label)

    def verdict(self, m: dict[str, float]) -> tuple[bool, str]:
        if self.prefix == "tts":
            wer, ref, margin = m["tts/wer"], m["tts/ref_wer"], m["tts/sim_margin"]
            ok = wer <= 2 * ref and margin > 0
            return ok, f"WER {wer:.2f} vs 2 x ceiling {2 * ref:.2f}; speaker margin {margin:+.3f} (> 0)"
        margin, ref = m["lm/sim_margin"], m["lm/ref_sim_margin"]
        return margin >= ref / 2, f"continuation margin {margin:.3f} vs half the references' {ref / 2:.3f}"


TTS_CURVES = (
    ("tts/wer", "tts/ref_wer", "WER (pocketsphinx)"),
    ("tts/sim_margin", "tts/ref_sim_margin", "speaker margin (own - other)"),
    ("tts/dnsmos_ovrl", "tts/ref_dnsmos_ovrl", "DNSMOS OVRL"),
)
RECIPES = {
    "valle": Recipe(("experiment=valle_tiny",), "tts", TTS_CURVES),
    "tts_parallel": Recipe(("experiment=tts_parallel_tiny",), "tts", TTS_CURVES),
    "lm": Recipe(
        (),
        "lm",
        (
            ("lm/sim_margin", "lm/ref_sim_margin", "continuation speaker margin"),
            ("lm/dnsmos_ovrl", "lm/ref_dnsmos_ovrl", "DNSMOS OVRL"),
            ("lm/speech_fraction", "lm/ref_speech_fraction", "speech fraction"),
        ),
    ),
}


def run(args: list[str], threads: int | None, log: Path) -> None:
    env = dict(os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {}))
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode:
        raise SystemExit(f"{' '.join(args)} failed (exit {done.returncode}); its output is in {log}")


def _clock(seconds: float) -> str:
    """Lightning's max_time format, DD:HH:MM:SS."""
    s = int(seconds)
    return f"{s // 86400:02d}:{s // 3600 % 24:02d}:{s // 60 % 60:02d}:{s % 60:02d}"


def train(recipe: Recipe, minutes: float, points: int, run_dir: Path, threads: int | None, extra: list[str]) -> None:
    every = minutes * 60 / points
    curve = "+callbacks.curve"
    run(
        [
            "train.py",
            *recipe.overrides,
            *extra,
            "trainer.max_steps=-1",
            f"+trainer.max_time='{_clock(minutes * 60)}'",
            "callbacks.samples=null",
            f"{curve}._target_=lightning.pytorch.callbacks.ModelCheckpoint",
            f"{curve}.dirpath={run_dir}/checkpoints",
            f"{curve}.filename='curve{{step:06d}}'",
            f"{curve}.auto_insert_metric_name=false",
            f"{curve}.save_top_k=-1",
            f"{curve}.train_time_interval._target_=datetime.timedelta",
            f"{curve}.train_time_interval.seconds={int(every)}",
            f"hydra.run.dir={run_dir}",
        ],
        threads,
        run_dir.with_suffix(".log"),
    )


def untrained(recipe: Recipe, run_dir: Path, threads: int | None, extra: list[str]) -> Path:
    """One step at learning rate 0: the recipe's model as initialised, with its codec fitted."""
    args = ["trainer.max_steps=1", "optim.optimizer.lr=0", "optim.weight_decay=0", "callbacks.samples=null"]
    command = ["train.py", *recipe.overrides, *extra, *args, f"hydra.run.dir={run_dir}"]
    run(command, threads, run_dir.with_suffix(".log"))
    return run_dir / "checkpoints" / "last.ckpt"


def judge(ckpt: Path, samples: int, threads: int | None, skip: set[int]) -> dict | None:
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    if state["global_step"] in skip:
        return None
    out = ckpt.parent.parent / "judged" / ckpt.stem
    run(
        ["eval.py", f"ckpt={ckpt}", f"eval.n_samples={samples}", f"eval.out_dir={out}"],
        threads,
        out.with_suffix(".log"),
    )
    timer = state.get("callbacks", {}).get("Timer", {}).get("time_elapsed", {})
    report = json.loads((out / "metrics.json").read_text())
    return {"step": state["global_step"], "minutes": timer.get("train", 0.0) / 60, "metrics": report["metrics"]}


def plot(recipe: Recipe, name: str, points: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(recipe.curves), figsize=(4.2 * len(recipe.curves), 3.4))
    minutes = [p["minutes"] for p in points]
    for ax, (key, ref, label) in zip(axes, recipe.curves, strict=True):
        ax.plot(minutes, [p["metrics"][key] for p in points], "o-", label="model")
        ax.axhline(points[-1]["metrics"][ref], color="grey", ls="--", label="references (ceiling)")
        if key == "tts/wer":
            ax.axhline(2 * points[-1]["metrics"][ref], color="tab:red", ls=":", label="target: 2 x ceiling")
        if key == "lm/sim_margin":
            ax.axhline(points[-1]["metrics"][ref] / 2, color="tab:red", ls=":", label="target: half the refs'")
        ax.set_xlabel("training minutes (2-core CPU)")
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{name}: {' '.join(recipe.overrides) or 'python train.py'}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _mark(recipe: Recipe, point: dict) -> str:
    return "met" if recipe.verdict(point["metrics"])[0] else "-"


def table(recipe: Recipe, name: str, points: list[dict], command: str, load: str) -> str:
    keys = [key for key, _, _ in recipe.curves]
    head = "| minutes | step | " + " | ".join(keys) + " | val/nll | target |\n" + "|---" * (len(keys) + 4) + "|\n"
    rows = "".join(
        f"| {p['minutes']:.1f} | {p['step']} | "
        + " | ".join(f"{p['metrics'][k]:.3f}" for k in keys)
        + f" | {p['metrics'].get('val/nll', float('nan')):.3f} | {_mark(recipe, p)} |\n"
        for p in points
    )
    last = points[-1]["metrics"]
    refs = " | ".join(f"{last[ref]:.3f}" for _, ref, _ in recipe.curves)
    met = [p for p in points if recipe.verdict(p["metrics"])[0]]
    first = f"first met at {met[0]['minutes']:.0f} min ({recipe.verdict(met[0]['metrics'])[1]})" if met else "never met"
    return (
        f"# Learning curve: {name}\n\n{head}{rows}| references | | {refs} | | |\n\n"
        f"Target {first}. At the end: {recipe.verdict(last)[1]}.\n\n"
        f"Minutes: training time (validation included) on this machine; load average at the end {load}.\n"
        f"Untrained point: the same recipe after one step at learning rate 0.\n\n"
        f"![curve](learning_{name}.png)\n\nCommand: `{command}`\n"
    )


def curve(name: str, minutes: float, n_points: int, samples: int, threads: int | None, extra: list[str]) -> list[dict]:
    """The judged points of one budgeted run of recipe ``name``: untrained, then every ``minutes / n_points``."""
    recipe = RECIPES[name]
    work = ROOT / "logs" / "learning" / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    work.mkdir(parents=True)
    first = untrained(recipe, work / "untrained", threads, extra)
    train(recipe, minutes, n_points, work / "run", threads, extra)
    saved = work / "run" / "checkpoints"
    points: list[dict] = []
    for ckpt in [first, *sorted(saved.glob("curve*.ckpt")), saved / "last.ckpt"]:  # last may repeat the last curve
        point = judge(ckpt, samples, threads, skip={p["step"] for p in points})
        points += [point] if point else []
    points[0]["minutes"] = 0.0
    return points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe", choices=sorted(RECIPES))
    parser.add_argument("--minutes", type=float, default=60.0, help="training budget (wall clock)")
    parser.add_argument("--points", type=int, default=6, help="checkpoints judged along the way")
    parser.add_argument("--samples", type=int, default=12, help="held-out items judged at each point")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (OMP_NUM_THREADS)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--redraw", action="store_true", help="only redraw the table and plot from the saved json")
    parser.add_argument("overrides", nargs="*", help="extra train.py overrides, e.g. model.hidden_size=192")
    args = parser.parse_intermixed_args()  # overrides may follow the options
    recipe, name = RECIPES[args.recipe], args.recipe
    saved = args.out / f"learning_{name}.json"
    if args.redraw:
        run = json.loads(saved.read_text())
    else:
        points = curve(name, args.minutes, args.points, args.samples, args.threads, args.overrides)
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        run = {"command": "python benchmarks/learning.py " + " ".join(sys.argv[1:]), "load": load, "points": points}
        args.out.mkdir(parents=True, exist_ok=True)
        saved.write_text(json.dumps(run, indent=2))
    plot(recipe, name, run["points"], args.out / f"learning_{name}.png")
    text = table(recipe, name, run["points"], run["command"], run.get("load", "not recorded"))
    (args.out / f"learning_{name}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
