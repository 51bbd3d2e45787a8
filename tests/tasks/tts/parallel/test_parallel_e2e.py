"""Parallel TTS end to end on the synthetic corpus, as a user runs it: train.py -> checkpoint ->
synthesize (from the checkpoint and from an export) -> eval (samples for held-out texts), in both modes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

from audiolm.cli import export, synthesize
from audiolm.runs import evaluate

from conftest import TTS_TINY, run_entry

# task=tts's tiny settings, with shorter prompts and one eval sample to keep the run short
NAR_TINY = [
    "task=tts_parallel",
    *[o for o in TTS_TINY if o not in ("task=tts", "eval.n_samples=2")],
    "task.model.prompt_seconds=1.0",
    "eval.n_samples=1",
]
AR_TINY = [
    *[o for o in NAR_TINY if o != "model=llama"],
    "task/tts/parallel/mode@task.model.mode=ar",
    "model=mamba",
]  # AR decodes on any backbone


def train(data_dir: Path, run_dir: Path, overrides: list[str]) -> Path:
    run_entry("train.py", *overrides, f"paths.data_dir={data_dir}", f"hydra.run.dir={run_dir}")
    return run_dir / "checkpoints" / "last.ckpt"


def speak_and_evaluate(ckpt: Path, data_dir: Path, out: Path, overrides: list[str]) -> dict:
    """Synthesise two sentences from the checkpoint (in the voice of a corpus utterance) and evaluate it;
    returns eval's report."""
    ref_wav = sorted(data_dir.glob("embedded/*/wavs/us_male/*.wav"))[0]  # the corpus exists once a run trained
    args = ["Hello there. How are you today?", "--ref", str(ref_wav), "--max-seconds", "0.4", "--seed", "3", *overrides]
    wav, rate = sf.read(synthesize.main([*args, "--out", str(out / "a.wav"), f"ckpt={ckpt}"]))
    assert rate == 16000 and len(wav) > 0.15 * rate and np.abs(wav).max() > 1e-3
    exported = export.main([f"ckpt={ckpt}", "--out", str(out / "m.safetensors")])
    again = sf.read(synthesize.main([*args, "--out", str(out / "b.wav"), f"ckpt={exported}"]))[0]
    assert np.array_equal(again, wav), "an fp32 export speaks exactly as its checkpoint"
    report = evaluate(ckpt, [f"eval.out_dir={out / 'eval'}", *overrides])
    assert len(report["samples"]) == 1
    for row in report["samples"]:
        assert row["text"] and 0 < row["seconds"] <= 0.5
        for key in ("file", "prompt", "reference"):
            assert sf.info(out / "eval" / row[key]).samplerate == 16000
    assert json.loads((out / "eval" / "metrics.json").read_text())["metrics"] == report["metrics"]
    return report


def test_nar_mode_trains_synthesizes_and_evaluates(data_dir, tmp_path):
    ckpt = train(data_dir, tmp_path / "run", NAR_TINY)
    header = (tmp_path / "run" / "csv" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"train/nll", "train/duration_loss", "val/nll", "val/acc", "val/duration_abs_log_error"} <= set(header)
    assert {f"val/nll_q{q}" for q in range(4)} | {f"val/acc_q{q}" for q in range(4)} <= set(header)
    report = speak_and_evaluate(ckpt, data_dir, tmp_path, ["task.model.mode.steps=4", "sampling.cfg_scale=2"])
    assert {"val/nll", "val/nll_q3", "val/duration_loss"} <= set(report["metrics"])


def test_ar_mode_trains_synthesizes_and_evaluates(data_dir, tmp_path):
    ckpt = train(data_dir, tmp_path / "run", AR_TINY)
    assert "MambaBackbone" in (ckpt.parent / "config.yaml").read_text()
    report = speak_and_evaluate(ckpt, data_dir, tmp_path, [])
    assert {"val/nll", "val/acc_q0", "val/nll_q3"} <= set(report["metrics"])
    assert "val/duration_loss" not in report["metrics"]
