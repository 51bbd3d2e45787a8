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
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.errors import ConfigCompositionException, InstantiationException, OverrideParseException
from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from audiolm.errors import AudiolmError, ConfigError

log = logging.getLogger("audiolm")
CONFIG_NAME = "config.yaml"


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
SHARED_PARTS = {"codec": "codec", "backbone": "model", "pattern": "pattern", "sampler": "sampling"}


def _arguments(node: DictConfig) -> set[str]:
    """The parameters ``node``'s ``_target_`` names explicitly (a ``**kwargs`` catch-all names none)."""
    params = inspect.signature(get_object(node._target_)).parameters.values()
    return {p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def build(cfg: DictConfig) -> tuple[Any, L.LightningDataModule, L.LightningModule]:
    """codec (None for tasks without one), datamodule and task of a run.

    Each shared part is built once, and only when the datamodule or the task names it as an
    argument: the audio LM takes a codec, a backbone, a pattern and a sampler; a captioner none.
    """
    built: dict[str, Any] = {}

    def parts_for(node: DictConfig) -> dict[str, Any]:
        wanted = _arguments(node) & SHARED_PARTS.keys()
        for name in wanted - built.keys():
            group = SHARED_PARTS[name]
            if cfg.get(group) is None:
                raise ConfigError(f"{node._target_} needs a `{group}` config; choose one, e.g. {group}=<option>")
            built[name] = instantiate(cfg[group])
        return {name: built[name] for name in wanted}

    datamodule = instantiate(cfg.data, **parts_for(cfg.data))
    task = instantiate(cfg.task, **parts_for(cfg.task))
    return built.get("codec"), datamodule, task


def _instantiate_all(node: DictConfig | None) -> list[Any]:
    return [instantiate(c) for c in (node or {}).values() if isinstance(c, DictConfig) and "_target_" in c]


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit, checkpoint, and return the final metrics (for sweeps)."""
    L.seed_everything(cfg.seed, workers=True)
    out = Path(cfg.paths.output_dir)
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    # Saved resolved, next to the checkpoints, so eval.py rebuilds exactly this run.
    OmegaConf.save(cfg, out / "checkpoints" / CONFIG_NAME, resolve=True)
    codec, datamodule, task = build(cfg)
    if cfg.get("ckpt_path") and codec is not None:
        # The resumed run must tokenise with the codec state its model learned on.
        codec.load_fitted_state(_read_checkpoint(Path(cfg.ckpt_path)).get("codec_state") or {})
    elif not cfg.get("ckpt_path"):
        _load_finetune_base(cfg, task)
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=_instantiate_all(cfg.get("callbacks")),
                                     logger=_instantiate_all(cfg.get("logger")) or False)
    log.info("parameters: %.2fM (trainable %.2fM)", _millions(task), _millions(task, trainable=True))
    trainer.fit(task, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    log.info("checkpoints: %s", out / "checkpoints")
    return metrics


def _load_finetune_base(cfg: DictConfig, task: Any) -> None:
    """A task whose LoRA block has a ``base`` key finetunes that trained model: load it before fitting
    (and before tokenising, so the data is encoded with the base's codec state). Resumes skip this."""
    lora = cfg.task.get("lora") or {}
    if not lora.get("rank") or "base" not in lora:
        return
    if not lora.base:
        raise ConfigError("task.lora.rank > 0 finetunes a trained model with adapters; set "
                          "task.lora.base=<its run>/checkpoints/last.ckpt")
    from audiolm.adapters.lora import load_base

    load_base(task, lora.base)


def _millions(module: torch.nn.Module, trainable: bool = False) -> float:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable) / 1e6


def _require_checkpoint(ckpt: Path) -> None:
    if not ckpt.is_file():
        raise AudiolmError(f"checkpoint not found: {ckpt}. Pass a file such as <run dir>/checkpoints/last.ckpt")


def _read_checkpoint(ckpt: Path) -> dict[str, Any]:
    _require_checkpoint(ckpt)
    return torch.load(ckpt, map_location="cpu", weights_only=True)


def load_checkpoint(ckpt: Path, overrides: list[str] = ()) -> tuple[DictConfig, Any, L.LightningDataModule, L.LightningModule]:
    """A trained run, rebuilt from the config saved next to ``ckpt`` (plus ``overrides``): cfg, codec,
    datamodule and task, with the task's weights and the codec's fitted state loaded."""
    cfg = load_run_config(ckpt, list(overrides))
    state = _read_checkpoint(ckpt)
    codec, datamodule, task = build(cfg)
    task.load_state_dict(state["state_dict"])
    task.on_load_checkpoint(state)  # the codec's fitted state, before any tokenisation uses the codec
    return cfg, codec, datamodule, task


def load_run_config(ckpt: Path, overrides: list[str]) -> DictConfig:
    """The config saved next to ``ckpt``, with command-line ``overrides`` applied on top."""
    from hydra import compose, initialize_config_dir

    _require_checkpoint(ckpt)
    if not (ckpt.parent / CONFIG_NAME).is_file():
        raise AudiolmError(f"no {CONFIG_NAME} next to {ckpt}: eval.py rebuilds the run from the config that "
                           f"train.py saves in the checkpoints folder. Copy it there with the checkpoint.")
    with initialize_config_dir(config_dir=str(ckpt.parent.resolve()), version_base="1.3"):
        return compose(config_name=CONFIG_NAME.removesuffix(".yaml"), overrides=overrides)


def evaluate(ckpt: Path, overrides: list[str]) -> dict[str, Any]:
    """Validation metrics and samples of a checkpoint; prints a table and writes metrics.json."""
    cfg, _, datamodule, task = load_checkpoint(ckpt, overrides)
    L.seed_everything(cfg.eval.seed, workers=True)
    trainer = L.Trainer(accelerator=cfg.trainer.accelerator, devices=1, logger=False, enable_checkpointing=False,
                        precision=cfg.trainer.precision, enable_model_summary=False)
    metrics = trainer.validate(task, datamodule=datamodule, verbose=False)[0]
    task.to(trainer.strategy.root_device).eval()  # validate hands the module back on the CPU
    out = Path(cfg.eval.out_dir or ckpt.parent.parent / "eval" / datetime.now().strftime("%Y-%m-%d_%H-%M-%S"))
    # The eval block: generic keys from train.yaml, the task's own ones from its task/*.yaml.
    settings = {k: v for k, v in OmegaConf.to_container(cfg.eval, resolve=True).items() if k != "out_dir"}
    samples = task.write_samples(datamodule, out, **settings)
    notes: list[str] = []
    if isinstance(samples, dict):  # a task that scores its samples (captions against references) says so
        metrics = {**metrics, **samples["metrics"]}
        samples, notes = samples["samples"], samples["notes"]
    # The shared sampler's settings, where the task samples with it (the captioner decodes with eval.* keys).
    sampling = OmegaConf.to_container(cfg.sampling) if getattr(task, "sampler", None) is not None else None
    report = {"checkpoint": str(ckpt), "metrics": {k: float(v) for k, v in metrics.items()}, "sampling": sampling,
              "samples_dir": str(out), "samples": samples, "notes": notes}
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(report, indent=2))
    _print_report(report)
    return report


def _print_report(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"eval: {report['checkpoint']}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in sorted(report["metrics"].items()):
        table.add_row(k, f"{v:.4f}")
    console = Console()
    console.print(table)
    for note in report["notes"]:
        console.print(f"note: {note}")
    console.print(f"{len(report['samples'])} samples and metrics.json in {report['samples_dir']}")
