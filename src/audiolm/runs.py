"""What train.py and eval.py call: build the run's parts from the config, then train or evaluate.

The parts come from Hydra ``_target_`` entries; nothing here knows which codec, backbone or
corpus is in use. User errors (``AudiolmError``, a missing mandatory config value) end the
program with one clear message instead of a stack trace.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.errors import ConfigCompositionException, InstantiationException, OverrideParseException
from hydra.utils import get_object, instantiate
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf, open_dict, read_write
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
# configs/hydra/launcher/submitit_*.yaml take the place of the plugin's defaults of the same name on purpose
# (so `hydra/launcher=submitit_slurm` gets audiolm's); Hydra 1.3 still checks them against the plugin's schema.
warnings.filterwarnings("ignore", message=r"\s*'hydra/launcher/submitit_\w+' is validated against ConfigStore schema")


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
    if rank_zero_only.rank == 0:  # under torchrun / srun every rank runs train(); rank 0 owns the run folder
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
    with warnings.catch_warnings(), _ddp_in_one_sweep_point(trainer):
        # train() itself writes config.yaml into the new run's checkpoints folder, which Lightning reports
        warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
        trainer.fit(task, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    if trainer.is_global_zero:
        print_summary(metrics, out)
    return metrics


def objective(cfg: DictConfig, metrics: dict[str, float]) -> float | None:
    """The value a sweep ranks this run by: ``optimized_metric`` (an ``hparams_search`` config sets it), else
    ``val/nll``. A run that did not log it returns None, which a sweep reports as missing (Optuna: a failed trial)."""
    name = cfg.get("optimized_metric") or "val/nll"
    if cfg.get("optimized_metric") and name not in metrics and rank_zero_only.rank == 0:
        log.warning(
            "this run logged no %s (optimized_metric), so a sweep cannot rank it; it logged %s", name, sorted(metrics)
        )
    return metrics.get(name)


# what Lightning's DDP launcher sets in its own process for the ranks it starts
_DDP_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")


@contextlib.contextmanager
def _ddp_in_one_sweep_point(trainer: L.Trainer) -> Iterator[None]:
    """Lightning's DDP launcher starts every other rank as ``python train.py <this command line>
    hydra.run.dir=<hydra.run.dir>``. In a multirun that command line is the whole sweep, so each rank would
    run the sweep again, in new folders; and the next sweep point, in this same process, would find the
    last one's process group and rank variables. The ranks get this job's own overrides and folder, and
    both are cleared when it ends."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from lightning.pytorch.strategies.launchers.subprocess_script import _SubprocessScriptLauncher

    import __main__

    launches = isinstance(trainer.strategy.launcher, _SubprocessScriptLauncher)
    if not (launches and HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN):
        yield
        return
    if __main__.__spec__ is not None:  # a launcher's worker (submitit) runs this job, not train.py
        raise ConfigError(
            f"trainer.strategy={trainer.strategy.strategy_name} starts its ranks by rerunning train.py, which this "
            "launcher does not run: use trainer=ddp_launched (one SLURM task per GPU) or trainer.strategy=ddp_spawn"
        )
    hydra_cfg, argv, env = HydraConfig.get(), sys.argv[1:], {k: os.environ.get(k) for k in _DDP_ENV}
    sys.argv[1:] = [*hydra_cfg.overrides.task, "hydra.mode=RUN"]
    with read_write(hydra_cfg.run):
        hydra_cfg.run.dir = hydra_cfg.runtime.output_dir
    try:
        yield
    finally:
        sys.argv[1:] = argv
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        for key, value in env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def shared_run_dir(argv: list[str]) -> list[str]:
    """Under torchrun or srun every rank runs train.py and composes its own config, so each would make its
    own run folder (named by the second it started). All ranks get one folder and only rank 0 writes
    ``.hydra/`` into it: under torchrun named by rank 0's start time; under srun ``runs/slurm-<job id>``, the
    same after a requeue (Lightning resumes from the ``hpc_ckpt`` it saved there). A given hydra.run.dir stays."""
    torchrun = os.environ.get("TORCHELASTIC_RUN_ID") is not None
    if torchrun:
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    elif "SLURM_PROCID" in os.environ and "SLURM_JOB_ID" in os.environ:
        rank, world = int(os.environ["SLURM_PROCID"]), int(os.environ.get("SLURM_NTASKS", "1"))
    else:
        return argv
    if world < 2 or any(a in ("-m", "--multirun") for a in argv):
        return argv
    extra = [] if rank == 0 else ["hydra.output_subdir=null"]
    if not any(a.startswith("hydra.run.dir=") for a in argv):
        name = _torchrun_start(rank) if torchrun else f"slurm-{os.environ['SLURM_JOB_ID']}"
        extra.append(f"hydra.run.dir=${{paths.log_dir}}/${{task_name}}/runs/{name}")  # as configs/hydra/default.yaml
    return [*argv, *extra]


def _torchrun_start(rank: int) -> str:
    """Rank 0's start time, told to every rank through torchrun's own store (the one init_process_group uses)."""
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        raise ConfigError(
            "under this torchrun every rank needs one run folder: add hydra.run.dir=logs/train/runs/<name>"
        )
    from torch.distributed import PrefixStore, TCPStore

    store = TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), timeout=timedelta(minutes=10))
    store = PrefixStore(f"audiolm/attempt_{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}", store)
    if rank == 0:
        store.set("run_start", datetime.now().strftime("%Y-%m-%d_%H-%M-%S"))
    return store.get("run_start").decode()


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
