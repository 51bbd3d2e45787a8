"""The pre-flight check: the memory of one step is measured, and a run whose largest batch cannot fit
stops before training with one line naming the keys to lower."""

from __future__ import annotations

import pytest
import torch

from audiolm.callbacks.preflight import GB, Preflight, _measure

from conftest import TINY, run_entry


def test_the_measured_step_memory_covers_what_the_step_allocates():
    def step() -> None:
        block = torch.ones(256 * 2**20 // 4)  # 256 MB, touched
        assert block.sum() > 0

    taken = _measure(step, torch.device("cpu"), budget=8 * GB, fail=lambda n: AssertionError(n))
    assert 0.8 * 256 * 2**20 < taken < 4 * 256 * 2**20


def test_a_run_whose_largest_batch_cannot_fit_stops_before_training(data_dir, tmp_path):
    proc = run_entry(
        "train.py",
        *TINY,
        "callbacks.preflight.headroom=0.00001",  # as if the machine had a few hundred kB free
        f"paths.data_dir={data_dir}",
        f"hydra.run.dir={tmp_path}",
        check=False,
    )
    assert proc.returncode == 1
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("error: pre-flight")]
    assert "largest batch (4 items" in line and "Lower data.max_tokens" in line
    assert "Traceback" not in proc.stderr and not list(tmp_path.glob("checkpoints/*.ckpt"))


def test_headroom_is_a_share():
    with pytest.raises(ValueError, match="callbacks.preflight.headroom"):
        Preflight(headroom=1.5)
