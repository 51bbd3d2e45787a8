"""Exact resume: a run SIGKILLed after its step-N checkpoint and resumed from it ends where an unbroken run
ends, with the same loss at every logged step and the same weights (mid-epoch, sampler and random state
restored)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from audiolm.checkpoints import resume_checkpoint
from audiolm.errors import AudiolmError

from conftest import ROOT, TINY, TTS_TINY, run_entry
from support.run_metrics import train_losses

N = 6  # checkpoint step; the tiny corpus has 4 train batches an epoch: N is mid-epoch


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]


def kill_after_first_checkpoint(args: list[str], run_dir: Path) -> None:
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *args, f"hydra.run.dir={run_dir}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # DDP ranks die with it: the whole group is killed
    )
    last, deadline = run_dir / "checkpoints" / "last.ckpt", time.monotonic() + 300
    while not last.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.parametrize(
    "family, trainer",
    [
        ("tts", "cpu"),
        pytest.param("lm", "cpu", marks=pytest.mark.slow),
        pytest.param("tts", "ddp_cpu", marks=pytest.mark.slow),
    ],
)
def test_a_killed_run_resumes_to_the_losses_and_weights_of_an_unbroken_one(family, trainer, data_dir, tmp_path):
    tiny = TTS_TINY if family == "tts" else [*TINY, "logger=csv"]
    args = [
        *tiny,
        f"trainer={trainer}",
        f"paths.data_dir={data_dir}",
        f"trainer.max_steps={2 * N}",
        f"trainer.val_check_interval={N}",
        "trainer.deterministic=true",
    ]
    straight, killed, resumed = tmp_path / "straight", tmp_path / "killed", tmp_path / "resumed"
    run_entry("train.py", *args, f"hydra.run.dir={straight}")
    kill_after_first_checkpoint(args, killed)
    ckpt = torch.load(killed / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == N
    (position,) = ckpt["loops"]["fit_loop"]["state_dict"]["combined_loader"]  # the train loader's, saved
    assert position["epoch"] >= 1 and position["consumed"] > 0  # in a later epoch, some of its batches taken
    run_entry("train.py", *args, f"ckpt_path={killed}/checkpoints/last.ckpt", f"hydra.run.dir={resumed}")

    want, got = train_losses(straight), train_losses(resumed)
    assert sorted(got) == [s for s in sorted(want) if s >= N]  # steps N+1.. (the csv counts from 0)
    assert all(got[s] == want[s] for s in got), {s: (want[s], got[s]) for s in got if got[s] != want[s]}
    a, b = weights(straight), weights(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_truncated_checkpoint_falls_back_to_the_newest_one_that_loads(tmp_path, caplog):
    older, good, cut = tmp_path / "step000002.ckpt", tmp_path / "step000004.ckpt", tmp_path / "last.ckpt"
    for step, path in [(2, older), (4, good), (6, cut)]:
        torch.save({"global_step": step, "state_dict": {"w": torch.zeros(1000)}}, path)
        os.utime(path, (step, step))
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])  # killed halfway through a copy
    assert resume_checkpoint(good) == good
    with caplog.at_level("WARNING", logger="audiolm"):
        assert resume_checkpoint(tmp_path) == good
    assert "truncated or unreadable: resuming from" in caplog.text
    for path in (older, good):
        path.write_bytes(b"")
    with pytest.raises(AudiolmError, match="no other checkpoint .* loads; start the run again without ckpt_path"):
        resume_checkpoint(cut)
