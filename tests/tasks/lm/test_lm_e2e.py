"""End to end, as a user runs it: train -> checkpoint -> eval (metrics + WAVs) -> resume, on tiny configs."""

from __future__ import annotations

import json

import pytest
import soundfile as sf

from conftest import TINY, run_entry
from support.judged import AUDIO_SCORES, in_range


def test_train_writes_checkpoints_config_and_logs(trained_run):
    ckpts = trained_run / "checkpoints"
    assert (ckpts / "last.ckpt").is_file()
    assert (ckpts / "config.yaml").is_file()
    metrics = (trained_run / "csv" / "metrics.csv").read_text()
    assert "train/nll" in metrics and "val/acc_q0" in metrics


def test_eval_reports_metrics_and_writes_listenable_wavs(trained_run, tmp_path):
    out = tmp_path / "eval"
    proc = run_entry(
        "eval.py",
        f"ckpt={trained_run / 'checkpoints' / 'last.ckpt'}",
        f"eval.out_dir={out}",
        "sampling.temperature=0.8",
    )
    assert "val/bits_per_token" in proc.stdout
    report = json.loads((out / "metrics.json").read_text())
    m = report["metrics"]
    assert m["val/nll"] > 0 and m["val/bits_per_token"] == pytest.approx(m["val/nll"] / 0.6931, rel=1e-3)
    assert {"val/acc_q0", "val/acc_q3"} <= set(m)
    assert report["sampling"]["temperature"] == 0.8
    kinds = [s["kind"] for s in report["samples"]]
    assert kinds.count("unconditional") == 2 and kinds.count("continuation") == 2
    for wav in out.glob("*.wav"):
        data, sr = sf.read(wav)
        assert sr == 16000 and len(data) > 0.25 * sr and abs(data).max() > 1e-3
    # Judged by the default eval.judges: the generated part of each continuation, its reference's beside it.
    for side in ("", "ref_"):
        for key, low, high in AUDIO_SCORES:
            assert f"lm/{side}{key}" in proc.stdout and in_range(m[f"lm/{side}{key}"], low, high), f"lm/{side}{key}"
    assert in_range(m["lm/uncond_dnsmos_ovrl"], 0, 5) and in_range(m["lm/uncond_speech_fraction"], 0, 1)
    assert not any("wer" in k for k in m), "an LM has no text to be scored against"
    for row in report["samples"]:
        if row["kind"] == "continuation":
            assert isinstance(row["transcript"], str) and isinstance(row["ref_transcript"], str)
            assert row["generated_seconds"] == pytest.approx(0.3) and in_range(row["sim_margin"], -2, 2)
        assert in_range(row["speech_fraction"], 0, 1)


def test_resume_continues_from_the_checkpoint(trained_run, data_dir, tmp_path):
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    proc = run_entry(
        "train.py",
        *TINY,
        "trainer.max_steps=9",
        f"ckpt_path={ckpt}",
        f"paths.data_dir={data_dir}",
        f"hydra.run.dir={tmp_path}",
    )
    assert "Restoring states from the checkpoint" in proc.stdout + proc.stderr
    rows = (tmp_path / "csv" / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    steps = [int(r.split(",")[header.index("step")]) for r in rows[1:] if r.split(",")[header.index("step")]]
    assert min(steps) >= 6, "a resumed run starts at the checkpoint's step, not at 0"


def test_eval_with_a_missing_checkpoint_is_a_clear_error(tmp_path):
    proc = run_entry("eval.py", f"ckpt={tmp_path / 'nope.ckpt'}", check=False)
    assert proc.returncode == 1
    assert "checkpoint not found" in proc.stderr and "Traceback" not in proc.stderr


def test_unknown_config_option_is_a_clear_error():
    proc = run_entry("train.py", "model=nonexistent", check=False)
    assert proc.returncode == 1
    assert "Could not find 'model/nonexistent'" in proc.stderr and "mamba" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_data_folder_is_a_clear_error(tmp_path):
    proc = run_entry(
        "train.py", "data=folder", f"data.root={tmp_path / 'missing'}", f"hydra.run.dir={tmp_path / 'run'}", check=False
    )
    assert proc.returncode == 1
    assert "data folder not found" in proc.stderr and "data.root" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_speechtokenizer_without_weights_names_what_is_missing(tmp_path):
    proc = run_entry("train.py", "model=mamba", "codec=speechtokenizer", f"hydra.run.dir={tmp_path}", check=False)
    assert proc.returncode == 1
    assert "SpeechTokenizer" in proc.stderr and "codec.pretrained" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_multirun_grid_over_backbones_ends_with_a_table_of_objectives(data_dir, tmp_path):
    proc = run_entry(
        "train.py",
        "-m",
        "model=mamba,llama",
        *TINY,
        "trainer.max_steps=3",
        "logger=csv",
        f"paths.data_dir={data_dir}",
        f"hydra.sweep.dir={tmp_path}",
    )
    for job in ("0", "1"):
        assert (tmp_path / job / "checkpoints" / "last.ckpt").is_file()
    assert "sweep: val/nll per job" in proc.stdout and "model=llama" in proc.stdout
    assert "missing" not in proc.stdout, "every job validated, even one shorter than val_check_interval"


def test_wandb_logger_works_offline(data_dir, tmp_path):
    run_entry(
        "train.py",
        *TINY,
        "trainer.max_steps=2",
        "logger=wandb",
        "logger.wandb.offline=true",
        f"paths.data_dir={data_dir}",
        f"hydra.run.dir={tmp_path}",
    )
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert runs and any(runs[0].rglob("*.wandb")), "an offline W&B run with its log file"


def test_a_bad_manifest_is_a_clear_error(tmp_path):
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text('{"path": "a.wav"}\n')
    proc = run_entry(
        "train.py", "data=manifest", f"data.path={manifest}", f"hydra.run.dir={tmp_path / 'run'}", check=False
    )
    assert proc.returncode == 1
    assert "manifest.jsonl:1: missing key(s) ['duration']" in proc.stderr and "Traceback" not in proc.stderr


def test_a_bad_eval_override_is_a_clear_error(trained_run):
    proc = run_entry("eval.py", f"ckpt={trained_run / 'checkpoints' / 'last.ckpt'}", "sampling.top_p=0", check=False)
    assert proc.returncode == 1
    assert "sampling.top_p must be in (0, 1]" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_ddp_on_two_cpu_processes(data_dir, tmp_path):
    run_entry(
        "train.py",
        *TINY,
        "trainer=ddp_cpu",
        "trainer.max_steps=3",
        f"paths.data_dir={data_dir}",
        f"hydra.run.dir={tmp_path}",
    )
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
