"""Loading trained runs, in one place: a training checkpoint (its config.yaml beside it) or an export.

    load_model(path)        -> the family's Model, ready for ``model.generate(request)``: no Trainer,
                               no datamodule (what notebooks, the CLIs and the web UI use)
    load_task(ckpt)         -> cfg, datamodule and the Task around the model (what eval.py and export use)

``path`` may be a ``.ckpt`` file, a run folder or its ``checkpoints/`` folder (``last.ckpt`` is taken),
or a ``.safetensors`` export (``audiolm.cli.export``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig

from audiolm.errors import AudiolmError

log = logging.getLogger("audiolm")
CONFIG_NAME = "config.yaml"
MODEL_PREFIX = "model."


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file from ``path``: the file itself, or ``last.ckpt`` of a run folder or of its
    ``checkpoints/`` folder."""
    path = Path(path)
    for candidate in (path / "checkpoints" / "last.ckpt", path / "last.ckpt"):
        if path.is_dir() and candidate.is_file():
            log.info("using %s", candidate)
            return candidate
    if not path.is_file():
        raise AudiolmError(
            f"checkpoint not found: {path}. Pass a run folder, its checkpoints/ folder or a file such "
            f"as <run dir>/checkpoints/last.ckpt"
        )
    return path


def _loads(ckpt: Path) -> bool:
    """Whether ``ckpt`` is a whole checkpoint: a truncated file lacks the archive's directory, at its end."""
    try:
        torch.load(ckpt, map_location="cpu", weights_only=True, mmap=True)
        return True
    except Exception:  # noqa: BLE001 - any failure to read means "not usable"
        return False


def resume_checkpoint(path: str | Path) -> Path:
    """The checkpoint to resume from: ``path``'s, or, when that one is truncated or unreadable (a kill or a
    full disk while it was copied), the newest other checkpoint beside it that loads, with a warning."""
    ckpt = resolve_checkpoint(path)
    if _loads(ckpt):
        return ckpt
    others = sorted((p for p in ckpt.parent.glob("*.ckpt") if p != ckpt), key=lambda p: p.stat().st_mtime)
    good = next((p for p in reversed(others) if _loads(p)), None)
    if good is None:
        raise AudiolmError(
            f"{ckpt} is truncated or unreadable and no other checkpoint in {ckpt.parent} loads; "
            f"start the run again without ckpt_path"
        )
    log.warning("%s is truncated or unreadable: resuming from %s, the newest loadable one beside it", ckpt, good)
    return good


def read_checkpoint(ckpt: Path) -> dict[str, Any]:
    """The contents of a training checkpoint; a truncated or foreign file is refused in one line."""
    ckpt = resolve_checkpoint(ckpt)
    try:
        return torch.load(ckpt, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError) as exc:
        raise AudiolmError(
            f"{ckpt} is truncated or not a checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
            f"use another one of its run, e.g. the step*.ckpt beside it"
        ) from None


def run_config(ckpt: Path, overrides: list[str] = ()) -> DictConfig:
    """The config saved next to ``ckpt``, with command-line ``overrides`` applied on top."""
    from hydra import compose, initialize_config_dir

    ckpt = resolve_checkpoint(ckpt)
    if not (ckpt.parent / CONFIG_NAME).is_file():
        raise AudiolmError(
            f"no {CONFIG_NAME} next to {ckpt}: a run is rebuilt from the config that train.py saves "
            f"in the checkpoints folder. Copy it there with the checkpoint."
        )
    with initialize_config_dir(config_dir=str(ckpt.parent.resolve()), version_base="1.3"):
        cfg = compose(config_name=CONFIG_NAME.removesuffix(".yaml"), overrides=list(overrides))
    check_layout(cfg, ckpt)
    return cfg


def check_layout(cfg: DictConfig, source: Path) -> None:
    """Refuse a run written before models and tasks were split (audiolm 0.1): its weights name other modules."""
    task = cfg.get("task") or {}
    if "model" not in task:
        raise AudiolmError(
            f"{source} was written by audiolm 0.1 ({task.get('_target_')}), before each task "
            f"family got a model of its own; this version cannot load its weights. Retrain it: "
            f"python train.py with the same groups"
        )


def model_weights(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The model's own weights out of a task's state dict (``model.`` prefix removed)."""
    return {k.removeprefix(MODEL_PREFIX): v for k, v in state_dict.items() if k.startswith(MODEL_PREFIX)}


def load_task(ckpt: Path, overrides: list[str] = ()) -> tuple[DictConfig, L.LightningDataModule, L.LightningModule]:
    """A trained run rebuilt from its saved config (plus ``overrides``): cfg, datamodule and task, with
    the weights and what travels with them (the codec's fitted state) loaded."""
    from audiolm.runs import build

    ckpt = resolve_checkpoint(ckpt)
    cfg = run_config(ckpt, overrides)
    state = read_checkpoint(ckpt)
    _, datamodule, task = build(cfg)
    task.model.load_weights(model_weights(state["state_dict"]))
    task.on_load_checkpoint(state)  # the codec's fitted state, before any tokenisation uses the codec
    return cfg, datamodule, task


def untrained_model(cfg: DictConfig) -> Any:
    """The family's model of a run, shaped as it trained (with the LoRA adapters of ``task.lora``), before
    any weights are loaded: what checkpoints and exports both load into."""
    from audiolm.adapters.lora import LoraSettings
    from audiolm.runs import build_model

    model = build_model(cfg)
    lora = cfg.task.get("lora") or {}
    if lora.get("rank"):
        model.adapt(LoraSettings(**{**lora, "base": None}))
    return model


def load_model(
    path: str | Path,
    overrides: list[str] = (),
    adapter: str | Path | None = None,
    device: str | torch.device | None = None,
) -> Any:
    """The family's model from a checkpoint, a run folder or an export, in eval mode on ``device``;
    ``adapter`` adds an exported LoRA adapter. Its run config is ``model.config``."""
    from audiolm.exports import load_adapter, load_export

    path = Path(path)
    if path.suffix == ".safetensors":
        cfg, model = load_export(path, list(overrides))
    else:
        ckpt = resolve_checkpoint(path)
        cfg = run_config(ckpt, overrides)
        model = untrained_model(cfg)
        state = read_checkpoint(ckpt)
        model.load_weights(model_weights(state["state_dict"]))
        model.load_extra_state(state)
    if adapter is not None:
        load_adapter(model, Path(adapter))
    model.config = cfg
    model.eval()
    if device is not None:
        model.to(device)
        if getattr(model, "codec", None) is not None:
            model.codec.to(device)
    return model


# What a resumed run must share with the run that wrote its checkpoint: (config key, group to name).
RESUME_KEYS = (
    ("task._target_", "task"),
    ("task.model._target_", "task"),
    ("model._target_", "model"),
    ("codec._target_", "codec"),
    ("pattern._target_", "pattern"),
)


def check_resume(cfg: DictConfig, ckpt: Path) -> None:
    """Refuse, in one line, to resume ``ckpt`` with other groups than it was trained with (its weights
    would not fit), naming the groups to use. The trained run's choices come from its saved config
    and, where Hydra wrote it, its ``.hydra/hydra.yaml``."""
    from omegaconf import OmegaConf

    ckpt = resolve_checkpoint(ckpt)
    saved_path = ckpt.parent / CONFIG_NAME
    if not saved_path.is_file():
        return
    saved = OmegaConf.load(saved_path)
    differ = sorted({group for key, group in RESUME_KEYS if OmegaConf.select(saved, key) != OmegaConf.select(cfg, key)})
    if not differ:
        return
    hydra_yaml = ckpt.parent.parent / ".hydra" / "hydra.yaml"
    choices = OmegaConf.load(hydra_yaml).hydra.runtime.choices if hydra_yaml.is_file() else {}
    trained = " ".join(f"{g}={choices[g]}" for g in differ if g in choices) or ", ".join(
        f"{g} ({OmegaConf.select(saved, key)})"
        for key, g in RESUME_KEYS
        if g in differ and OmegaConf.select(saved, key) is not None
    )
    raise AudiolmError(
        f"{ckpt} was trained with other {'/'.join(differ)} groups than this run; resume it with "
        f"the ones it was trained with: python train.py {trained} ckpt_path={ckpt}"
    )
