"""Bad input at the edges: each gets one line that says what is wrong and what to do, or a handled result
with nothing lost; never a stack trace."""

from __future__ import annotations

import resource
import shutil
import signal
import subprocess

import yaml
from test_kill_resume import CODEC, make_manifest, run_env, store_contents, tokenize_cmd

from conftest import ROOT, TINY, run_entry


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    # (a progress bar may share the line: the message starts at "error: ")
    (line,) = [x[x.index("error: ") :] for x in proc.stderr.splitlines() if "error: " in x]
    return line


def test_a_typo_in_a_nested_key_names_the_right_one():
    line = one_line_error(run_entry("train.py", "task.optimizer.lrr=1", check=False))
    assert "task.optimizer.lrr is not a config key; did you mean optim.optimizer.lr" in line


def test_a_truncated_checkpoint_is_refused_by_eval(trained_run, tmp_path):
    run = shutil.copytree(trained_run, tmp_path / "run")
    last = run / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:20_000])
    line = one_line_error(run_entry("eval.py", f"ckpt={run}", check=False))
    assert f"{last} is truncated or not a checkpoint" in line


def test_a_checkpoint_of_another_task_is_refused_on_resume(trained_run, data_dir, tmp_path):
    line = one_line_error(
        run_entry(
            "train.py",
            "task=tts",
            f"paths.data_dir={data_dir}",
            f"ckpt_path={trained_run}/checkpoints/last.ckpt",
            f"hydra.run.dir={tmp_path}",
            check=False,
        )
    )
    assert "was trained with other" in line and "resume it with the ones it was trained with" in line


def test_a_sampling_setting_out_of_range_on_eval(trained_run):
    line = one_line_error(run_entry("eval.py", f"ckpt={trained_run}", "sampling.top_p=2", check=False))
    assert line.startswith("error: sampling.top_p must be in (0, 1], got 2")


def test_a_corpus_folder_with_nothing_to_train_on(tmp_path):
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "notes.txt").write_text("no audio here")
    line = one_line_error(
        run_entry(
            "train.py",
            *[o for o in TINY if not o.startswith("data.corpus")],  # a folder corpus has no size to set
            "data=folder",
            f"data.root={tmp_path / 'corpus'}",
            f"paths.data_dir={tmp_path}",
            f"hydra.run.dir={tmp_path / 'run'}",
            check=False,
        )
    )
    assert f"no media files in {tmp_path / 'corpus'}" in line


def test_a_disk_that_fills_while_tokenising_loses_nothing(tmp_path):
    manifest = make_manifest(tmp_path)
    codec_yaml = tmp_path / "codec.yaml"
    codec_yaml.write_text(yaml.safe_dump({**CODEC, "delay": 0.0}))
    root = tmp_path / "store"

    def small_disk() -> None:  # every file this process writes stops at 6 kB, as on a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (6_000, 6_000))

    full = subprocess.run(
        tokenize_cmd(manifest, root, codec_yaml),
        env=run_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        preexec_fn=small_disk,
    )
    line = one_line_error(full)
    assert "disk" in line.lower() or "space" in line.lower(), line
    again = subprocess.run(
        tokenize_cmd(manifest, root, codec_yaml), env=run_env(), cwd=ROOT, capture_output=True, text=True
    )
    assert again.returncode == 0, again.stderr[-2000:]
    clean = tmp_path / "clean"
    subprocess.run(tokenize_cmd(manifest, clean, codec_yaml), env=run_env(), cwd=ROOT, check=True, capture_output=True)
    assert store_contents(root) == store_contents(clean)
