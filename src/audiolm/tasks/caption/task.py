"""The captioner task: trains a ``Captioner`` with the loss on the caption tokens (and their EOS) only.

    [prompt-before, audio, prompt-after, caption, EOS] --LLM--> loss on caption + EOS only

What trains is the projector, plus LoRA adapters (``lora``) or the whole LLM (``train_llm``, for
small random LLMs that know no language yet). Checkpoints hold only what trains: a run on a 7B
LLM saves megabytes, and the frozen parts are rebuilt from their config (pretrained weights, or a
seed for random ones) when the run is resumed or evaluated.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from audiolm.checkpoints import MODEL_PREFIX, model_weights
from audiolm.data.caption import CaptionDataModule
from audiolm.errors import ConfigError
from audiolm.tasks.base import Samples, Task
from audiolm.tasks.caption.layout import IGNORE
from audiolm.tasks.caption.model import Captioner
from audiolm.tasks.caption.samples import write_caption_samples


class CaptionTask(Task):
    """Args: model (a ``Captioner``), optim, lora: see ``tasks.base.Task``; ``train_llm`` trains the whole
    LLM too (exclusive with LoRA, which adapts a frozen one)."""

    model: Captioner

    def __init__(self, model: Captioner, optim: dict, lora: dict | None = None, train_llm: bool = False):
        if train_llm and lora and lora.get("rank"):
            raise ConfigError(
                "task.train_llm=true trains the whole LLM, task.lora adds adapters to a frozen one: "
                "choose one (task.lora.rank=0 or task.train_llm=false)"
            )
        super().__init__(model, optim, lora)
        if train_llm:
            model.llm.requires_grad_(True)
        self.llm_trains = train_llm or model.lora_settings is not None

    def train(self, mode: bool = True) -> CaptionTask:
        super().train(mode)
        if not self.llm_trains:
            self.model.llm.eval()  # frozen: no dropout
        return self

    def losses(self, batch: dict, train: bool, batch_idx: int = 0) -> dict[str, torch.Tensor]:
        """Mean NLL (``loss``), and summed NLL, correct predictions and counts over caption tokens (and
        over the EOS alone)."""
        model, layout = self.model, self.model.layout
        audio, audio_lengths = model.embed_audio(batch["wav"], batch["lengths"])
        ids = layout.caption_ids(batch["captions"], model.max_caption_tokens)
        seq = layout.training(model.llm.embed, audio, audio_lengths, ids)
        start = seq.first_target - 1  # the position that predicts the first caption token
        length = seq.inputs_embeds.shape[1]
        logits = model.llm.model(
            inputs_embeds=seq.inputs_embeds,
            attention_mask=seq.attention_mask,
            use_cache=False,
            logits_to_keep=length - start,
        ).logits[:, :-1]
        targets = seq.labels[:, start + 1 :]
        real = targets != IGNORE
        nll = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE, reduction="sum")
        correct = (logits.detach().argmax(-1) == targets) & real
        is_eos = real & (targets == layout.eos_id)
        count = real.sum()
        return {
            "loss": nll / count.clamp(min=1),
            "nll_sum": nll,
            "count": count,
            "correct": correct.sum(),
            "eos_correct": (correct & is_eos).sum(),
            "eos_count": is_eos.sum(),
        }

    def log_metrics(self, prefix: str, out: dict[str, torch.Tensor], batch: dict) -> None:
        n, sync = max(int(out["count"]), 1), prefix == "val"
        self.log(f"{prefix}/nll", out["nll_sum"] / n, prog_bar=True, batch_size=n, sync_dist=sync)
        self.log(f"{prefix}/acc", out["correct"].float() / n, batch_size=n, sync_dist=sync)
        # How often the model ends the caption where the reference does: the pad-token test.
        n_eos = max(int(out["eos_count"]), 1)
        self.log(f"{prefix}/stop_acc", out["eos_correct"].float() / n_eos, batch_size=n_eos, sync_dist=sync)

    # -- checkpoints hold only what trains -----------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        keep = {MODEL_PREFIX + k for k in self.model.trainable_keys()}
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k in keep}

    def load_state_dict(self, state_dict: dict[str, torch.Tensor], strict: bool = True, assign: bool = False):
        """What Lightning calls to resume: the checkpoint holds the trainable weights only, which the
        model checks and loads (``Captioner.load_weights``); the frozen ones stay as built."""
        self.model.load_weights(model_weights(state_dict))

    def write_samples(self, datamodule: CaptionDataModule, out_dir: Path, **settings) -> Samples:
        """Caption held-out clips; predictions beside references, caption metrics (see ``tasks.caption.samples``)."""
        return write_caption_samples(self.model, datamodule, Path(out_dir), **settings)
