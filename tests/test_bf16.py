"""bf16 mixed precision without a GPU: every task trains under ``trainer.precision=bf16-mixed`` on the CPU,
its losses finite and close to the fp32 run of the same seed, its weights kept in fp32 (autocast casts
per op; the master weights and the optimiser stay fp32). ``debug=nan_guard`` watches the bf16 audio LM
(Mamba: the seeds' NaN lessons, state-spaces/mamba #6)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from conftest import CAPTION_TINY, TINY, TTS_TINY, run_entry
from support.run_metrics import train_losses


def check_close_to_fp32(fp32: Path, bf16: Path) -> None:
    want, got = train_losses(fp32), train_losses(bf16)
    assert got.keys() == want.keys() and len(got) >= 4
    assert all(math.isfinite(v) for v in got.values())
    # bf16 keeps ~3 significant digits per op; a few steps later the losses still agree to ~2%
    assert all(abs(got[s] - want[s]) <= 0.02 * want[s] for s in got), {s: (want[s], got[s]) for s in got}
    state = torch.load(bf16 / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    floats = {k: v.dtype for k, v in state["state_dict"].items() if v.is_floating_point()}
    assert floats and set(floats.values()) == {torch.float32}  # master weights stay fp32


def bf16_run(tmp_path: Path, data_dir: Path, *args: str) -> Path:
    run_entry(
        "train.py", *args, "trainer.precision=bf16-mixed", f"paths.data_dir={data_dir}", f"hydra.run.dir={tmp_path}"
    )
    return tmp_path


def test_audio_lm_in_bf16_with_the_nan_guard(trained_run, data_dir, tmp_path):
    check_close_to_fp32(trained_run, bf16_run(tmp_path, data_dir, *TINY, "debug=nan_guard"))


def test_valle_in_bf16(tts_run, data_dir, tmp_path):
    check_close_to_fp32(tts_run, bf16_run(tmp_path, data_dir, *TTS_TINY))


def test_captioner_in_bf16(caption_run, data_dir, tmp_path):
    first, _ = caption_run
    check_close_to_fp32(first, bf16_run(tmp_path, data_dir, *CAPTION_TINY, "task.train_llm=false"))


@pytest.mark.slow
def test_parallel_tts_in_bf16(data_dir, tmp_path):
    parallel = ["task=tts_parallel", *TTS_TINY[1:]]
    fp32 = tmp_path / "fp32"
    run_entry("train.py", *parallel, f"paths.data_dir={data_dir}", f"hydra.run.dir={fp32}")
    check_close_to_fp32(fp32, bf16_run(tmp_path / "bf16", data_dir, *parallel))
