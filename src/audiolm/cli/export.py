"""Export a checkpoint to safetensors, with what is needed to rebuild it in the metadata:

    python -m audiolm.cli.export ckpt=<run>/checkpoints/last.ckpt --out model.safetensors --dtype fp16
    python -m audiolm.cli.export ckpt=<lora run>/checkpoints/last.ckpt --adapter --out voice.safetensors

The file holds the task's weights in fp32, fp16 or bf16 (the codec's fitted state stays fp32, under
``codec_state.``) and string metadata: ``format``, ``kind`` (``model`` or ``lora_adapter``), the
run ``config`` (JSON), the ``codec`` config, the ``phoneme_vocab`` (TTS) and the ``lora`` settings
of an adapter. ``load_export`` rebuilds the model from it; nothing is unpickled. ``--adapter``
writes just the LoRA adapter weights, loaded back onto the base model with ``load_adapter``.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from safetensors import safe_open
from safetensors.torch import save_file

from audiolm.errors import AudiolmError, ConfigError, MissingFileError

FORMAT = "audiolm-export/1"
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
CODEC_PREFIX = "codec_state."


def save_export(task, cfg: DictConfig, out: Path, dtype: str = "fp32", adapter: bool = False) -> Path:
    """Write ``task`` (or only its LoRA adapter) to ``out``; see the module docstring for the layout."""
    if dtype not in DTYPES:
        raise ConfigError(f"--dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    codec = getattr(task, "codec", None)  # the captioner has none
    meta = {"format": FORMAT, "dtype": dtype, "kind": "lora_adapter" if adapter else "model",
            "config": json.dumps(OmegaConf.to_container(cfg, resolve=True))}
    if codec is not None:
        meta["codec"] = json.dumps(codec.config_dict(), default=str)
    if hasattr(task, "text"):
        meta["phoneme_vocab"] = task.text.vocab.to_json()
    if adapter:
        from audiolm.adapters.lora import lora_state

        if getattr(task, "lora_settings", None) is None:
            raise ConfigError("--adapter: this checkpoint has no LoRA adapter (its run had task.lora.rank 0)")
        weights = lora_state(task.lora_module)
        meta["lora"] = json.dumps(task.lora_settings.to_dict())
    else:
        weights = {k: v.detach().cpu() for k, v in task.state_dict().items()}
        if codec is not None:
            weights.update({CODEC_PREFIX + k: v.detach().cpu().float() for k, v in codec.fitted_state().items()})
    tensors = {k: v.to(DTYPES[dtype]) if v.is_floating_point() and not k.startswith(CODEC_PREFIX) else v
               for k, v in weights.items()}
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
            raise AudiolmError(f"{path} is not an audiolm export (format {meta.get('format')!r}); create one with "
                               f"python -m audiolm.cli.export")
        return meta, {k: f.get_tensor(k) for k in f.keys()}


def load_export(path: Path, overrides: list[str] = ()) -> tuple[DictConfig, Any, Any]:
    """Rebuild (cfg, codec, task) from a model export, ``overrides`` (``key=value``) applied to its config."""
    from audiolm.runs import build

    meta, tensors = read_export(path)
    if meta["kind"] != "model":
        raise AudiolmError(f"{path} holds a LoRA adapter only; load its base model (ckpt=...) and pass the "
                           f"adapter with --adapter {path}")
    cfg = OmegaConf.merge(OmegaConf.create(json.loads(meta["config"])), OmegaConf.from_dotlist(list(overrides)))
    codec, _, task = build(cfg)
    codec_state = {k.removeprefix(CODEC_PREFIX): v for k, v in tensors.items() if k.startswith(CODEC_PREFIX)}
    weights = {k: v.float() if v.is_floating_point() else v for k, v in tensors.items() if not k.startswith(CODEC_PREFIX)}
    task.load_state_dict(weights)
    task.on_load_checkpoint({"codec_state": codec_state, "phoneme_vocab": meta.get("phoneme_vocab")})
    return cfg, codec, task.eval()


def load_adapter(task, path: Path) -> None:
    """Add the LoRA adapter exported at ``path`` to ``task`` (its base model) and load its weights."""
    from audiolm.adapters.lora import LoraSettings, add_lora, load_lora

    meta, tensors = read_export(path)
    if meta["kind"] != "lora_adapter":
        raise AudiolmError(f"{path} is a full model export, not a LoRA adapter; load it with ckpt={path}")
    if meta.get("phoneme_vocab") and hasattr(task, "text") and meta["phoneme_vocab"] != task.text.vocab.to_json():
        raise AudiolmError(f"{path} was trained with another phoneme vocabulary than this base model")
    settings = LoraSettings(**{**json.loads(meta["lora"]), "base": None})
    add_lora(task.lora_module, settings)
    task.lora_settings = settings
    load_lora(task.lora_module, {k: v.float() for k, v in tensors.items()})
    task.eval()


def load_model(ckpt: Path, overrides: list[str], adapter: Path | None = None) -> tuple[DictConfig, Any, Any]:
    """(cfg, codec, task) ready for inference from a checkpoint (.ckpt) or an export (.safetensors)."""
    from audiolm.runs import load_checkpoint

    if ckpt.suffix == ".safetensors":
        cfg, codec, task = load_export(ckpt, overrides)
    else:
        cfg, codec, _, task = load_checkpoint(ckpt, overrides)
    if adapter is not None:
        load_adapter(task, adapter)
    return cfg, codec, task.eval()


# A config override: a dotted key (Hydra's +/++/~ prefixes allowed), '=', a value without spaces.
OVERRIDE = re.compile(r"^(\+\+|\+|~)?[A-Za-z_][\w.@/]*=\S*$")


def split_args(argv: list[str]) -> tuple[Path, list[str], list[str]]:
    """``ckpt=PATH``, the other ``key=value`` overrides, and the remaining arguments (flags, and text, which
    has spaces or no ``key=`` shape; a text that looks like an override can come through standard input)."""
    ckpts = [a.split("=", 1)[1] for a in argv if a.startswith("ckpt=")]
    if len(ckpts) != 1:
        raise AudiolmError("give the model as ckpt=<run dir>/checkpoints/last.ckpt (or an export .safetensors)")
    overrides = [a for a in argv if OVERRIDE.match(a) and not a.startswith("ckpt=")]
    rest = [a for a in argv if not a.startswith("ckpt=") and a not in overrides]
    return Path(ckpts[0]), overrides, rest


def main(argv: list[str] | None = None) -> Path:
    import sys

    from audiolm.runs import exit_on_user_error, load_checkpoint

    @exit_on_user_error
    def run(argv: list[str]) -> Path:
        ckpt, overrides, rest = split_args(argv)
        p = argparse.ArgumentParser(prog="python -m audiolm.cli.export", description=__doc__.splitlines()[0])
        p.add_argument("--out", type=Path, help="output file (default: next to the checkpoint, <name>.<dtype>.safetensors)")
        p.add_argument("--dtype", default="fp32", choices=sorted(DTYPES))
        p.add_argument("--adapter", action="store_true", help="export only the LoRA adapter")
        args = p.parse_args(rest)
        cfg, _, _, task = load_checkpoint(ckpt, overrides)
        kind = "adapter" if args.adapter else args.dtype
        out = save_export(task, cfg, args.out or ckpt.with_name(f"{ckpt.stem}.{kind}.safetensors"), args.dtype,
                          args.adapter)
        print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
        return out

    return run(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
