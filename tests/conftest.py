"""Shared fixtures: the repo root, a session-wide data folder with a tiny synthetic corpus, and a
helper to run the entry points as a user would (in a subprocess, from the command line)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# Fixtures shared beyond one test folder.
pytest_plugins = ["support.judge_clips"]

ROOT = Path(__file__).resolve().parents[1]

# Tests never use the network: hub clients answer "not cached" at once instead of retrying for
# ~45 s per codec before the clear offline error every codec must give.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Small enough for CPU tests in seconds, big enough for a train/val split.
TINY = [
    "data.corpus.n_utterances=24",
    "data.batch_size=4",
    "data.segment_seconds=2.0",
    "model.hidden_size=32",
    "model.num_layers=2",
    "trainer.max_steps=6",
    "trainer.val_check_interval=3",
    "trainer.log_every_n_steps=1",
    "trainer.limit_val_batches=2",
    "optim.scheduler.warmup_steps=2",
    "eval.n_samples=2",
    "eval.sample_seconds=0.6",
    "eval.prompt_seconds=0.3",
    "eval.batch_size=2",
    "callbacks.samples.every_n_steps=1000",  # no samples during tiny runs; tests/callbacks/test_samples.py has them
]

# The captioner on the tiny embedded caption corpus.
CAPTION_TINY = [
    "task=caption",
    "data.n_clips=40",
    "data.batch_size=4",
    "trainer.max_steps=4",
    "trainer.val_check_interval=2",
    "trainer.limit_val_batches=2",
    "trainer.log_every_n_steps=1",
    "optim.scheduler.warmup_steps=1",
]

# The VALL-E task on the same tiny corpus (TTS targets are never cut, so no segment length).
TTS_TINY = [
    "task=tts",
    "model=llama",
    "logger=csv",
    "eval.n_samples=2",
    "eval.max_seconds=0.5",
    *[o for o in TINY if not o.startswith(("eval.", "data.segment_seconds"))],
]


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """One data folder for the session, so the tiny corpus is synthesised and tokenised once."""
    return tmp_path_factory.mktemp("data")


def run_entry(script: str, *args: str, cwd: Path = ROOT, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", "WANDB_MODE": "offline", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / script), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{script} {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
        )
    return proc


@pytest.fixture(scope="session")
def trained_run(data_dir, tmp_path_factory) -> Path:
    """A tiny default-experiment run (train.py with TINY overrides), shared by the tests that read it."""
    run_dir = tmp_path_factory.mktemp("run")
    run_entry("train.py", *TINY, f"paths.data_dir={data_dir}", f"hydra.run.dir={run_dir}")
    return run_dir


@pytest.fixture(scope="session")
def tts_run(data_dir, tmp_path_factory) -> Path:
    """A tiny VALL-E run (train.py with TTS_TINY overrides)."""
    run_dir = tmp_path_factory.mktemp("tts_run")
    run_entry("train.py", *TTS_TINY, f"paths.data_dir={data_dir}", f"hydra.run.dir={run_dir}")
    return run_dir


@pytest.fixture(scope="session")
def caption_run(data_dir, tmp_path_factory) -> tuple[Path, Path]:
    """A tiny captioner with a frozen LLM (so only the projector trains), trained 4 steps, then resumed to 6."""
    first, resumed = tmp_path_factory.mktemp("caption_run"), tmp_path_factory.mktemp("caption_resumed")
    common = [*CAPTION_TINY, "task.train_llm=false", f"paths.data_dir={data_dir}"]
    run_entry("train.py", *common, f"hydra.run.dir={first}")
    run_entry(
        "train.py",
        *common,
        "trainer.max_steps=6",
        f"ckpt_path={first}/checkpoints/last.ckpt",
        f"hydra.run.dir={resumed}",
    )
    return first, resumed
