"""What train.py and eval.py call: build the run's parts from the config, then train or evaluate.

The parts come from Hydra ``_target_`` entries; nothing here knows which codec, backbone or
corpus is in use. User errors (``AudiolmError``, a missing mandatory config value) end the
program with one clear message instead of a stack trace.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import sys
import warnings
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.errors import ConfigCompositionException, InstantiationException, OverrideParseException
from hydra.utils import get_object, instantiate
from lightning.pytorch.callbacks import LearningRateMonitor
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import MissingMandatoryValue

from audiolm.checkpoints import (
    CONFIG_NAME,
    check_resume,
    load_task,
    read_checkpoint,
    resolve_checkpoint,
    resume_checkpoint,
)
from audiolm.errors import AudiolmError, ConfigError
from audiolm.overrides import unknown_argument
from audiolm.reports import print_report, print_summary

log = logging.getLogger("audiolm")
# Lightning 2.5 calls a torch pytree API that torch 2.11 deprecates: nothing a user can act on.
warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")


def user_error(exc: BaseException) -> BaseException | None:
    """The user-facing error inside ``exc``'s cause chain (Hydra wraps errors raised by targets)."""
    while exc is not None:
        if isinstance(exc, (AudiolmError, MissingMandatoryValue, ConfigCompositionException, OverrideParseException)):
            return exc
        exc = exc.__cause__ or (exc.__context__ if isinstance(exc, InstantiationException) else None)
    return None


def exit_on_user_error(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)  # Hydra finds configs/ through the wrapped function's module
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - re-raised unless it is the user's to fix
            found = user_error(exc)
            if found is None:
                raise
            hint = " (set it on the command line, e.g. key=value)" if isinstance(found, MissingMandatoryValue) else ""
            print(f"error: {found}{hint}", file=sys.stderr)
            sys.exit(1)

    return wrapped


# Shared parts a datamodule or task may take, by constructor argument: the config group each is built from.
# One codec instance serves both, so the tokens the data is made of are the ones the task decodes.
SHARED_PARTS = {"codec": "codec", "backbone": "model", "pattern": "pattern", "sampler": "sampling", "optim": "optim"}


def _arguments(node: DictConfig) -> set[str]:
    """The parameters ``node``'s ``_target_`` names explicitly (a ``**kwargs`` catch-all names none)."""
    params = inspect.signature(get_object(node._target_)).parameters.values()
    return {p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


class _Parts:
    """The shared parts of one run, each built once, and only when a datamodule, a model or a task names
    it as an argument: the audio LM takes a codec, a backbone, a pattern and a sampler; a captioner none."""

    def __init__(self, cfg: DictConfig):
        self.cfg, self.built = cfg, {}

    def for_node(self, node: DictConfig) -> dict[str, Any]:
        wanted = _arguments(node) & SHARED_PARTS.keys()
        for name in wanted - self.built.keys():
            group = SHARED_PARTS[name]
            if self.cfg.get(group) is None:
                raise ConfigError(f"{node._target_} needs a `{group}` config; choose one, e.g. {group}=<option>")
            self.built[name] = instantiate(self.cfg[group])
        return {name: self.built[name] for name in wanted}


def build_model(cfg: DictConfig, parts: _Parts | None = None) -> Any:
    """The family's model of a run (``task.model``), with its shared parts."""
    parts = parts or _Parts(cfg)
    return instantiate(cfg.task.model, **parts.for_node(cfg.task.model))


def build(cfg: DictConfig) -> tuple[Any, L.LightningDataModule, L.LightningModule]:
    """codec (None for tasks without one), datamodule and task of a run; the task wraps the model built
    from ``task.model``, and the datamodule and the model share one codec."""
    parts = _Parts(cfg)
    datamodule = instantiate(cfg.data, **parts.for_node(cfg.data))
    model = build_model(cfg, parts)
    task = instantiate(cfg.task, model=model, **parts.for_node(cfg.task))
    return parts.built.get("codec"), datamodule, task


def _instantiate_all(node: DictConfig | None) -> list[Any]:
    return [instantiate(c) for c in (node or {}).values() if isinstance(c, DictConfig) and "_target_" in c]


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit, checkpoint, and return the final metrics (for sweeps)."""
    L.seed_everything(cfg.seed, workers=True)
    if cfg.get("ckpt_path"):
        with open_dict(cfg):
            cfg.ckpt_path = str(resume_checkpoint(cfg.ckpt_path))
        check_resume(cfg, Path(cfg.ckpt_path))  # before this run's config is written, maybe over the old one
    out = Path(cfg.paths.output_dir)
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    # Saved resolved, next to the checkpoints, so eval.py rebuilds exactly this run.
    OmegaConf.save(cfg, out / "checkpoints" / CONFIG_NAME, resolve=True)
    codec, datamodule, task = build(cfg)
    if cfg.get("ckpt_path") and codec is not None:
        # The resumed run must tokenise with the codec state its model learned on.
        codec.load_fitted_state(read_checkpoint(Path(cfg.ckpt_path)).get("codec_state") or {})
    elif not cfg.get("ckpt_path"):
        _load_finetune_base(cfg, task)
    loggers = _instantiate_all(cfg.get("logger"))
    callbacks = _instantiate_all(cfg.get("callbacks"))
    if not loggers:  # Lightning refuses a learning-rate monitor with nothing to log to (logger=none, debug=fdr)
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    try:
        trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    except InstantiationException as exc:  # a key added with +trainer.x=... that Trainer does not take
        error = unknown_argument(exc.__cause__, inspect.signature(L.Trainer).parameters, "trainer")
        if error is None:
            raise
        raise error from None
    log.info("parameters: %.2fM (trainable %.2fM)", _millions(task), _millions(task, trainable=True))
    with warnings.catch_warnings():
        # train() itself writes config.yaml into the new run's checkpoints folder, which Lightning reports
        warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
        trainer.fit(task, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    print_summary(metrics, out)
    return metrics


def _load_finetune_base(cfg: DictConfig, task: Any) -> None:
    """A task whose LoRA block has a ``base`` key finetunes that trained model: load it before fitting
    (and before tokenising, so the data is encoded with the base's codec state). Resumes skip this."""
    lora = cfg.task.get("lora") or {}
    if not lora.get("rank") or "base" not in lora:
        return
    if not lora.base:
        raise ConfigError(
            "task.lora.rank > 0 finetunes a trained model with adapters; set "
            "task.lora.base=<its run>/checkpoints/last.ckpt"
        )
    from audiolm.adapters.lora import load_base

    load_base(task.model, lora.base)


def _millions(module: torch.nn.Module, trainable: bool = False) -> float:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable) / 1e6


def evaluate(ckpt: Path, overrides: list[str]) -> dict[str, Any]:
    """Validation metrics and samples of a checkpoint; prints a table and writes metrics.json."""
    ckpt = resolve_checkpoint(ckpt)
    cfg, datamodule, task = load_task(ckpt, overrides)
    L.seed_everything(cfg.eval.seed, workers=True)
    trainer = L.Trainer(
        accelerator=cfg.trainer.accelerator,
        devices=1,
        logger=False,
        enable_checkpointing=False,
        precision=cfg.trainer.precision,
        enable_model_summary=False,
    )
    metrics = trainer.validate(task, datamodule=datamodule, verbose=False)[0]
    task.to(trainer.strategy.root_device).eval()  # validate hands the module back on the CPU
    out = Path(cfg.eval.out_dir or ckpt.parent.parent / "eval" / datetime.now().strftime("%Y-%m-%d_%H-%M-%S"))
    # The eval block: generic keys from train.yaml, the task's own ones from its task/*.yaml.
    settings = {k: v for k, v in OmegaConf.to_container(cfg.eval, resolve=True).items() if k != "out_dir"}
    samples = task.write_samples(datamodule, out, **settings)
    # The shared sampler's settings, where the model samples with it (the captioner decodes with eval.* keys).
    sampling = OmegaConf.to_container(cfg.sampling) if "sampler" in _arguments(cfg.task.model) else None
    report = {
        "checkpoint": str(ckpt),
        "metrics": {k: float(v) for k, v in {**metrics, **samples.metrics}.items()},
        "sampling": sampling,
        "samples_dir": str(out),
        "samples": samples.rows,
        "notes": samples.notes,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(report, indent=2))
    print_report(report)
    return report
