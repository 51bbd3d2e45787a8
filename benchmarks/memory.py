"""Peak memory and throughput of each task's default run and each CPU recipe, for the README's table.

    python benchmarks/memory.py --steps 30
    python benchmarks/memory.py --steps 30 --runs lm "lm codec=mulaw"

Each row is one ``train.py`` run of ``--steps`` steps with its defaults (the corpus, the token store and
the codec fit are cached by an earlier run, so their cost is not in it; run ``make demo`` or this script
once before). Peak RSS is the run process's own high-water mark (``wait4``), which includes Python,
torch and the data; tokens/s is the ``TokenThroughput`` callback's mean over the logged steps (a
captioner logs none). Writes ``benchmarks/results/memory.md``.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = {
    "lm": [],
    "lm codec=mulaw": ["codec=mulaw"],
    "lm model=llama pattern=flatten": ["model=llama", "pattern=flatten"],
    "tts": ["task=tts"],
    "tts_parallel": ["task=tts_parallel"],
    "caption": ["task=caption"],
    "experiment=valle_tiny": ["experiment=valle_tiny"],
    "experiment=tts_parallel_tiny": ["experiment=tts_parallel_tiny"],
}


def measure(name: str, steps: int, work: Path) -> dict:
    run_dir = work / name.replace(" ", "_").replace("=", "-")
    args = [*RUNS[name], f"trainer.max_steps={steps}", f"trainer.val_check_interval={steps}"]
    args += ["trainer.log_every_n_steps=5", "callbacks.samples=null", "logger=csv", f"hydra.run.dir={run_dir}"]
    start = time.perf_counter()
    with (work / f"{run_dir.name}.log").open("w") as log:
        proc = subprocess.Popen([sys.executable, "train.py", *args], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{name}: train.py failed; see {work / run_dir.name}.log")
    with (run_dir / "csv" / "metrics.csv").open() as f:
        rates = [float(r["train/tokens_per_s"]) for r in csv.DictReader(f) if r.get("train/tokens_per_s")]
    return {
        "run": name,
        "peak_gb": usage.ru_maxrss / 2**20,  # kB -> GB
        "tokens_per_s": sum(rates) / len(rates) if rates else None,
        "seconds": time.perf_counter() - start,
    }


def _rate(tokens_per_s: float | None) -> str:
    return "-" if tokens_per_s is None else f"{tokens_per_s:,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--runs", nargs="*", default=list(RUNS), choices=list(RUNS))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "memory.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(name, args.steps, Path(tmp)) for name in args.runs]
    table = "| `python train.py ...` | peak RSS | tokens/s | wall (s) |\n|---|---|---|---|\n" + "".join(
        f"| `{r['run']}` | {r['peak_gb']:.2f} GB | {_rate(r['tokens_per_s'])} | {r['seconds']:.0f} |\n" for r in rows
    )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    text = (
        f"# Memory and throughput of the defaults ({args.steps} steps each, CPU)\n\n{table}\n"
        f"Peak RSS: the train.py process's high-water mark. tokens/s: codec tokens a second, the "
        f"TokenThroughput callback's mean (a captioner has no codec tokens). Wall: the whole run, startup and "
        f"validation included. Load average at the end: {load}.\n\n"
        f"Command: `python benchmarks/memory.py --steps {args.steps}`\n"
    )
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
