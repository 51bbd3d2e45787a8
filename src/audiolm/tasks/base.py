"""What every task family shares: the model base (an ``nn.Module`` that answers one inference call),
the task base (the LightningModule that trains a model passed in), and the samples an evaluation
writes.

    Model     owns embeddings, heads and inference: ``generate(request) -> result`` (``tasks.inference``);
              what must travel with its weights (a fitted codec state, a phoneme vocabulary) comes
              from ``extra_state`` and goes back through ``load_extra_state``.
    Task      wraps a ``Model``: losses, metrics, optimiser, LoRA finetuning, checkpoint hooks, samples.

A model is usable on its own, with no Trainer: ``audiolm.checkpoints.load_model(path)`` rebuilds one
from a checkpoint or an export.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import lightning as L
import torch
from torch import nn

from audiolm.adapters.lora import LoraSettings, add_lora
from audiolm.codecs.base import AudioCodec
from audiolm.errors import ConfigError
from audiolm.tasks.inference import Audio
from audiolm.tasks.optim import build_optimizer

IGNORE = -100  # the target id every loss skips (torch's cross_entropy default ignore_index)


class Model(nn.Module, ABC):
    """Base of the families' models. ``Request`` is the request class ``generate`` answers."""

    Request: ClassVar[type]
    lora_defaults: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        super().__init__()
        self.lora_settings: LoraSettings | None = None

    @abstractmethod
    def generate(self, request: Any) -> Any:
        """The family's one inference call (see ``tasks.inference``)."""

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # -- what travels with the weights ---------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        """Checkpoint entries beside the weights (plain tensors and strings)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Take back what ``extra_state`` wrote (entries that are absent or None are skipped)."""

    # -- LoRA ----------------------------------------------------------------------------------
    @property
    def lora_module(self) -> nn.Module:
        """Where LoRA adapters go."""
        raise ConfigError(f"{type(self).__name__} takes no LoRA adapters; set task.lora.rank=0")

    def adapt(self, settings: LoraSettings) -> None:
        """Finetune with adapters: everything is frozen but the adapters added to ``lora_module``."""
        self.requires_grad_(False)
        add_lora(self.lora_module, settings, self.lora_defaults)
        self.lora_settings = settings

    def load_weights(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Load a checkpoint's weights (all of them: a model whose checkpoints hold less says so here)."""
        self.load_state_dict(state_dict)


class CodecModel(Model):
    """A model over codec tokens (the audio LM and the TTS models). The codec is a tool the model
    listens with, not a part it trains: it stays out of the module tree, so pretrained codec
    weights never enter a checkpoint, and only its fitted state (melvq's centroids) travels."""

    def __init__(self, codec: AudioCodec) -> None:
        super().__init__()
        object.__setattr__(self, "codec", codec)

    @property
    def lora_module(self) -> nn.Module:
        """Models over codec tokens adapt their backbone."""
        return self.backbone

    @property
    def lora_defaults(self) -> tuple[str, ...]:
        return self.backbone.lora_targets

    def extra_state(self) -> dict[str, Any]:
        return {"codec_state": {k: v.cpu() for k, v in self.codec.fitted_state().items()}}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if state.get("codec_state"):
            self.codec.load_fitted_state(state["codec_state"])

    def seconds_to_frames(self, seconds: float) -> int:
        """At least one frame: the codec's one rounding of seconds into frames."""
        return self.codec.seconds_to_frames(seconds)

    def encode_audio(self, audio: Audio) -> torch.Tensor:
        """Audio -> codes [Q, F] (resampled to the codec's rate first)."""
        from audiolm.audio.io import resample

        wav = resample(audio.wav, audio.sample_rate, self.codec.sample_rate)
        return self.codec.encode(wav[None].to(self.codec.device))[0].cpu()

    def decode_codes(self, codes: torch.Tensor) -> Audio:
        """codes [Q, F] -> Audio at the codec's rate."""
        wav = self.codec.decode(codes[None].to(self.codec.device))[0].detach().cpu()
        return Audio(wav, self.codec.sample_rate)


@dataclass
class Samples:
    """What ``Task.write_samples`` returns for every family: one row per written sample (files are
    relative to the samples folder), scores of the samples, and notes on what was skipped."""

    rows: list[dict] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class Task(L.LightningModule, ABC):
    """Args:
    model: the family's ``Model``, built from ``task.model`` and passed in.
    optim: ``optimizer`` (a partial taking parameter groups), ``weight_decay`` and ``scheduler``
        (the ``optim`` config group; see ``tasks.optim``).
    lora: ``task.lora`` (``adapters.lora.LoraSettings`` keys); None or rank 0 trains as ``model`` says.
    """

    def __init__(self, model: Model, optim: dict, lora: dict | None = None):
        super().__init__()
        self.model = model
        self.optim = dict(optim)
        if lora and lora.get("rank"):
            model.adapt(LoraSettings(**lora))

    @abstractmethod
    def losses(self, batch: dict, train: bool, batch_idx: int = 0) -> dict[str, torch.Tensor]:
        """``loss`` (what is optimised) and the figures ``log_metrics`` logs, for one batch."""

    @abstractmethod
    def log_metrics(self, prefix: str, out: dict[str, torch.Tensor], batch: dict) -> None:
        """Log ``out`` under ``prefix`` (train or val)."""

    @abstractmethod
    def write_samples(self, datamodule: L.LightningDataModule, out_dir: Path, **settings: Any) -> Samples:
        """Samples of held-out data under ``out_dir``, and their scores (what eval.py reports)."""

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        out = self.losses(batch, train=True, batch_idx=batch_idx)
        self.log_metrics("train", out, batch)
        return out["loss"]

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self.log_metrics("val", self.losses(batch, train=False, batch_idx=batch_idx), batch)

    def configure_optimizers(self) -> dict:
        return build_optimizer(self, **self.optim)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint.update(self.model.extra_state())

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.model.load_extra_state(checkpoint)
