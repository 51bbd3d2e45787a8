"""The README's commands, parsed from the README itself, so the two cannot drift apart: every `python
train.py` line composes as written, and (slow) the ones that need no weights, data or run of the
reader's train for a few steps on the synthetic corpus."""

from __future__ import annotations

import re
import shlex

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from conftest import ROOT, run_entry

# A reader's own things: a placeholder, a path to weights or audio, a run to evaluate.
NEEDS_THE_READER = re.compile(r"<[^>]+>|/path/|/weights/|\.\.\.|\bvoices\b|musiccaps|\.wav|\.pt\b|\.nemo\b|pretrained=")


def readme_commands(script: str) -> list[str]:
    """Every ``python <script> ...`` line of the README's shell blocks (continuations joined, comments dropped)."""
    text = (ROOT / "README.md").read_text()
    found = []
    for lang, block in re.findall(r"```(\w*)\n(.*?)```", text, re.S):
        if lang not in ("", "sh", "bash"):
            continue
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith(f"python {script} "):
                found.append(line)
    return found


def overrides(command: str) -> list[str]:
    """The command's overrides; a reader's placeholder (``<run>``) stands as a plain word."""
    return [re.sub(r"<[^>]+>", "run", a) for a in shlex.split(command)[2:] if "=" in a]


TRAIN = readme_commands("train.py")


def test_the_readme_has_train_commands():
    assert len(TRAIN) >= 10 and any("task=tts" in c for c in TRAIN) and any("task=caption" in c for c in TRAIN)


@pytest.mark.parametrize("command", TRAIN)
def test_every_readme_train_command_composes(command):
    args = [
        a.split("=")[0] + "=" + a.split("=", 1)[1].split(",")[0] for a in overrides(command)
    ]  # a sweep's first point
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        compose(config_name="train", overrides=args)


QUICK = [
    "trainer.max_steps=2",
    "trainer.val_check_interval=2",
    "trainer.limit_val_batches=1",
    "logger=csv",
    "eval.n_samples=1",
]
RUNNABLE = [c for c in TRAIN if not NEEDS_THE_READER.search(c)]


@pytest.mark.slow
@pytest.mark.parametrize("command", RUNNABLE)
def test_readme_train_commands_without_weights_run(command, data_dir, tmp_path):
    args = overrides(command)
    small = ["data.corpus.n_utterances=24", "data.segment_seconds=2.0", "model.hidden_size=32", "model.num_layers=2"]
    if "codec=mulaw" in args:  # one token per sample: data.max_tokens cuts the windows; eval's clips stay short
        small += ["eval.sample_seconds=0.05", "eval.prompt_seconds=0.02"]
    caption = any(a.startswith(("task=caption", "experiment=caption")) for a in args)
    args += ["data.n_clips=40", "data.batch_size=4"] if caption else small
    dest = f"hydra.sweep.dir={tmp_path}" if "-m" in shlex.split(command) else f"hydra.run.dir={tmp_path}"
    run_entry(
        "train.py", *(["-m"] if "-m" in shlex.split(command) else []), *args, *QUICK, f"paths.data_dir={data_dir}", dest
    )
