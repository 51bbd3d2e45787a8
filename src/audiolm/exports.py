"""Exports: a trained model (or its LoRA adapter alone) as one safetensors file; nothing is unpickled.

The file holds the model's weights in fp32, fp16 or bf16, what travels with them (``extra_state``:
tensor groups such as the codec's fitted state stay fp32 under ``<name>.``; strings such as the
phoneme vocabulary go to the metadata) and string metadata: ``format``, ``kind`` (``model`` or
``lora_adapter``), the run ``config`` (JSON), the ``codec`` config and the ``lora`` settings of an
adapter. ``load_export`` rebuilds the model from it; ``load_adapter`` adds an exported adapter to
its base model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from safetensors import safe_open
from safetensors.torch import save_file

from audiolm.errors import AudiolmError, ConfigError, MissingFileError

FORMAT = "audiolm-export/2"
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
EXTRA = "extra."


def save_export(model: Any, cfg: DictConfig, out: Path, dtype: str = "fp32", adapter: bool = False) -> Path:
    """Write ``model`` (or only its LoRA adapter) to ``out``; see the module docstring for the layout."""
    if dtype not in DTYPES:
        raise ConfigError(f"--dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    meta = {
        "format": FORMAT,
        "dtype": dtype,
        "kind": "lora_adapter" if adapter else "model",
        "config": json.dumps(OmegaConf.to_container(cfg, resolve=True)),
    }
    codec = getattr(model, "codec", None)  # the captioner has none
    if codec is not None:
        meta["codec"] = json.dumps(codec.config_dict(), default=str)
    extra: dict[str, torch.Tensor] = {}
    for key, value in model.extra_state().items():
        if isinstance(value, str):
            meta[EXTRA + key] = value
        elif value:
            extra.update({f"{EXTRA}{key}.{name}": t.detach().cpu().float() for name, t in value.items()})
    if adapter:
        from audiolm.adapters.lora import lora_state

        if model.lora_settings is None:
            raise ConfigError("--adapter: this checkpoint has no LoRA adapter (its run had task.lora.rank 0)")
        weights = lora_state(model.lora_module)
        meta["lora"] = json.dumps(model.lora_settings.to_dict())
    else:
        weights = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    tensors = {k: v.to(DTYPES[dtype]) if v.is_floating_point() else v for k, v in weights.items()}
    if not adapter:
        tensors.update(extra)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(out), metadata=meta)
    return out


def read_export(path: Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """Metadata and tensors of an export (safetensors only: no pickle)."""
    if not path.is_file():
        raise MissingFileError(f"export not found: {path}")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        if meta.get("format") != FORMAT:
            raise AudiolmError(
                f"{path} is not an export of this audiolm version (format {meta.get('format')!r}, "
                f"expected {FORMAT}); export the checkpoint again with python -m audiolm.cli.export"
            )
        return meta, {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open is no dict


def _extra_state(meta: dict[str, str], tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    state: dict[str, Any] = {k.removeprefix(EXTRA): v for k, v in meta.items() if k.startswith(EXTRA)}
    for name, tensor in tensors.items():
        if name.startswith(EXTRA):
            group, _, key = name.removeprefix(EXTRA).partition(".")
            state.setdefault(group, {})[key] = tensor
    return state


def load_export(path: Path, overrides: list[str] = ()) -> tuple[DictConfig, Any]:
    """Rebuild (cfg, model) from a model export, ``overrides`` (``key=value``) applied to its config."""
    from audiolm.checkpoints import check_layout, untrained_model

    meta, tensors = read_export(path)
    if meta["kind"] != "model":
        raise AudiolmError(
            f"{path} holds a LoRA adapter only; load its base model (ckpt=...) and pass the "
            f"adapter with --adapter {path}"
        )
    cfg = OmegaConf.merge(OmegaConf.create(json.loads(meta["config"])), OmegaConf.from_dotlist(list(overrides)))
    check_layout(cfg, path)
    model = untrained_model(cfg)
    model.load_weights(
        {k: v.float() if v.is_floating_point() else v for k, v in tensors.items() if not k.startswith(EXTRA)}
    )
    model.load_extra_state(_extra_state(meta, tensors))
    return cfg, model.eval()


def load_adapter(model: Any, path: Path) -> None:
    """Add the LoRA adapter exported at ``path`` to ``model`` (its base model) and load its weights."""
    from audiolm.adapters.lora import LoraSettings, load_lora

    meta, tensors = read_export(path)
    if meta["kind"] != "lora_adapter":
        raise AudiolmError(f"{path} is a full model export, not a LoRA adapter; load it with ckpt={path}")
    ours = model.extra_state()
    for key in (k.removeprefix(EXTRA) for k in meta if k.startswith(EXTRA)):
        if isinstance(ours.get(key), str) and ours[key] != meta[EXTRA + key]:
            raise AudiolmError(f"{path} was trained with another {key.replace('_', ' ')} than this base model")
    settings = LoraSettings(**{**json.loads(meta["lora"]), "base": None})
    model.adapt(settings)
    load_lora(model.lora_module, {k: v.float() for k, v in tensors.items()})
    model.eval()
