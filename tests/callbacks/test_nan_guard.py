"""The NaN/Inf guard names the first module that goes non-finite, forward or backward; the weight check
finds NaN/Inf in saved weights."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from audiolm.callbacks.nan_guard import NaNGuard, NonFiniteError
from audiolm.cli.check_weights import main as check_weights

from support.caption_models import batch_of, tiny_task, tone


def test_forward_nan_in_a_weight_names_that_layer():
    task = tiny_task().eval()
    with torch.no_grad():
        task.model.llm.model.model.layers[1].mlp.down_proj.weight[0, 0] = float("nan")
    with NaNGuard().watch(task.model), pytest.raises(NonFiniteError) as err:  # module names relative to the model
        task.losses(batch_of(tone(0.5)), train=False)
    message = str(err.value)
    assert message.startswith("forward: module llm.model.model.layers.1.mlp.down_proj (Linear) output 0 has")
    assert "NaN" in message


class Sqrt(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(x)


def test_backward_inf_names_the_module_whose_gradient_broke():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), Sqrt(), nn.Linear(4, 1))
    with torch.no_grad():
        model[0].weight.fill_(-1.0)  # ReLU gives exact zeros: sqrt is finite there, its gradient is not
        model[0].bias.zero_()
    x = torch.ones(2, 4)
    with NaNGuard().watch(model):
        loss = model(x).sum()  # forward is finite: no error yet
        with pytest.raises(NonFiniteError, match=r"backward: module 2 \(Sqrt\) computed a gradient for its input 0"):
            loss.backward()


def test_clean_training_step_passes_and_hooks_are_removed():
    task = tiny_task()
    guard = NaNGuard()
    with guard.watch(task):
        out = task.losses(batch_of(tone(0.5), tone(0.3, 880)), train=True)
        (out["nll_sum"] / out["count"]).backward()
    assert not guard._handles
    with torch.no_grad():
        task.model.projector.norm.weight[0] = float("inf")
    task.losses(batch_of(tone(0.5)), train=False)  # unwatched: no guard fires


class TinyModule(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(3, 3)
        self.head = nn.Linear(3, 1)

    def training_step(self, batch, batch_idx):
        if self.global_step == 2:
            with torch.no_grad():
                self.head.weight.fill_(float("inf"))
        return self.head(self.layer(batch[0])).sum()

    def train_dataloader(self):
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(16, 3)), batch_size=2)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


def test_as_callback_it_stops_training_at_the_bad_step(tmp_path):
    trainer = L.Trainer(
        max_steps=5,
        callbacks=[NaNGuard()],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    with pytest.raises(NonFiniteError, match=r"forward: module head \(Linear\)"):
        trainer.fit(TinyModule())
    assert trainer.global_step == 2


# -- weight check ----------------------------------------------------------------------------------
def test_check_weights_reports_bad_tensors_and_dtype_counts(tmp_path, capsys):
    good = {"a": torch.zeros(3, dtype=torch.float16), "b": torch.ones(2, 2), "steps": torch.tensor(3)}
    torch.save({"state_dict": good, "epoch": 1}, tmp_path / "good.ckpt")
    assert check_weights([str(tmp_path / "good.ckpt")]) == 0
    out = capsys.readouterr().out
    assert "OK " in out and "float16: 1 tensors / 3 values" in out and "float32: 1 tensors / 4 values" in out

    bad = {"encoder.x": torch.tensor([1.0, float("inf"), float("nan"), float("nan")])}
    torch.save({"dims": {}, "model_state_dict": bad}, tmp_path / "whisper.pt")
    folder = tmp_path / "hf"
    folder.mkdir()
    save_file({"w": torch.tensor([float("-inf")])}, folder / "model-00001.safetensors")
    assert check_weights([str(tmp_path / "whisper.pt"), str(folder)]) == 1
    out = capsys.readouterr().out
    assert "encoder.x: 2 NaN, 1 Inf" in out and "w: 0 NaN, 1 Inf" in out

    assert check_weights([str(tmp_path / "missing.ckpt")]) == 2
    assert "weights not found" in capsys.readouterr().err
