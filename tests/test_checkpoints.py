"""Loading in one place: a run folder, a checkpoint or an export gives the family's model, usable in plain
Python with no Trainer; a checkpoint from before the model/task split is refused in one line."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from audiolm.checkpoints import load_model, resolve_checkpoint
from audiolm.errors import AudiolmError
from audiolm.exports import save_export
from audiolm.tasks.inference import ContinueRequest
from audiolm.tasks.lm.model import AudioLM

from conftest import run_entry


def test_a_trained_lm_generates_in_plain_python_from_its_run_folder(trained_run):
    model = load_model(trained_run)
    assert isinstance(model, AudioLM) and not model.training
    result = model.generate(ContinueRequest(seconds=0.3, n=2, seed=0))
    assert len(result.audio) == 2 and result.audio[0].sample_rate == model.codec.sample_rate
    assert torch.equal(result.codes[0], model.generate(ContinueRequest(seconds=0.3, n=2, seed=0)).codes[0])


def test_an_export_loads_to_the_same_model(trained_run, tmp_path):
    model = load_model(trained_run)
    path = save_export(model, model.config, tmp_path / "lm.safetensors")
    again = load_model(path)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True))
    assert again.codec.fitted_state().keys() == model.codec.fitted_state().keys()
    request = ContinueRequest(seconds=0.2, seed=3)
    assert torch.equal(model.generate(request).codes[0], again.generate(request).codes[0])


def test_checkpoints_folder_and_file_resolve_to_last_ckpt(trained_run):
    last = trained_run / "checkpoints" / "last.ckpt"
    assert resolve_checkpoint(trained_run) == resolve_checkpoint(trained_run / "checkpoints") == last
    with pytest.raises(AudiolmError, match="checkpoint not found"):
        resolve_checkpoint(trained_run / "nope")


@pytest.fixture
def v01_run(tmp_path):
    """A run as audiolm 0.1 wrote it: the task held embeddings and heads itself, its config had no task.model."""
    ckpts = tmp_path / "checkpoints"
    ckpts.mkdir()
    OmegaConf.save(
        OmegaConf.create({"task": {"_target_": "audiolm.tasks.lm.AudioLMTask"}, "seed": 1}), ckpts / "config.yaml"
    )
    torch.save({"state_dict": {"embedding.weight": torch.zeros(2, 2)}}, ckpts / "last.ckpt")
    return tmp_path


def test_a_checkpoint_from_before_the_split_is_refused_in_one_line(v01_run):
    with pytest.raises(AudiolmError, match=r"written by audiolm 0.1 .*Retrain it"):
        load_model(v01_run)
    proc = run_entry("eval.py", f"ckpt={v01_run}", check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and "written by audiolm 0.1" in proc.stderr
