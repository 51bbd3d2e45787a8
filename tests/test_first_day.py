"""A new user's first day (issue: every documented option works, fails fast and clearly, and ends by
saying what to do next): each case runs the exact command and checks the result or the one-line error."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import ROOT, TINY, run_entry


def _quick(data_dir, tmp_path, *extra: str) -> list[str]:
    return [*TINY, *extra, f"paths.data_dir={data_dir}", f"hydra.run.dir={tmp_path}"]


def test_logger_none_trains_and_ends_with_a_summary_and_the_next_command(data_dir, tmp_path):
    proc = run_entry("train.py", *_quick(data_dir, tmp_path, "logger=none", "trainer.max_steps=3"))
    out = proc.stdout
    assert "final metrics" in out and "val/nll" in out, "a short run still validates once, at its end"
    assert f"run folder: {tmp_path}" in out
    assert f"next: python eval.py ckpt={tmp_path / 'checkpoints' / 'last.ckpt'}" in out
    said = proc.stdout + proc.stderr
    for noise in ("already configured with model summary", "was configured so 100%", "LeafSpec"):
        assert noise not in said, f"a line the user cannot act on: {noise}"
    assert said.count("reusing complete token store") <= 1


def test_debug_fdr_runs(data_dir, tmp_path):
    run_entry("train.py", *_quick(data_dir, tmp_path, "debug=fdr"))


def test_a_run_shorter_than_the_validation_interval_still_logs_validation(data_dir, tmp_path):
    run_entry(
        "train.py", *_quick(data_dir, tmp_path, "logger=csv", "trainer.max_steps=4", "trainer.val_check_interval=110")
    )
    header = (tmp_path / "csv" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert "val/nll" in header


def test_a_typo_in_a_key_names_the_nearest_one():
    proc = run_entry("train.py", "trainer.max_step=3", check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "trainer.max_step is not a config key; did you mean trainer.max_steps" in proc.stderr


def test_an_added_key_the_trainer_does_not_take_is_a_clear_error(data_dir, tmp_path):
    proc = run_entry("train.py", *_quick(data_dir, tmp_path, "+trainer.max_step=3"), check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "trainer.max_step is not an argument of trainer; did you mean trainer.max_steps?" in proc.stderr


def test_resuming_with_other_groups_names_the_ones_to_use(trained_run, tmp_path):
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    proc = run_entry("train.py", "task=caption", f"ckpt_path={ckpt}", f"hydra.run.dir={tmp_path}", check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "trained with other task groups" in proc.stderr and "task=lm" in proc.stderr


def test_eval_refuses_to_swap_a_group_of_the_trained_model(trained_run):
    proc = run_entry("eval.py", f"ckpt={trained_run}", "model=mamba", check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "`model=mamba` cannot apply" in proc.stderr


def test_eval_takes_a_run_folder(trained_run, tmp_path):
    proc = run_entry("eval.py", f"ckpt={trained_run}", f"eval.out_dir={tmp_path}")
    report = json.loads((tmp_path / "metrics.json").read_text())
    assert report["checkpoint"] == str(trained_run / "checkpoints" / "last.ckpt")
    assert f"checkpoint: {report['checkpoint']}" in proc.stdout, "the path on one line, unbroken"


@pytest.mark.parametrize(
    "command",
    [[str(ROOT / "eval.py")], ["-m", "audiolm.cli.export"], ["-m", "audiolm.cli.synthesize"]],
    ids=["eval", "export", "synthesize"],
)
def test_help_needs_no_checkpoint(command):
    proc = subprocess.run([sys.executable, *command, "--help"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "usage" in proc.stdout.lower() and "ckpt=" in proc.stdout
