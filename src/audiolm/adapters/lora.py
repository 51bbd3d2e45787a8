"""LoRA adapters through PEFT, for every task: add, freeze the rest, export just the adapters, load them back.

Adapters are injected in place (``peft.inject_adapter_in_model``) into the module a task adapts
(the TTS backbone, the captioner's LLM), so the task keeps its modules and every decoding path.
They are kept in fp32 whatever the base dtype: a bf16 LLM under bf16-mixed has no fp32 master
weights, and Adam on bf16 adapters loses most small updates. A lean decoder that reads projection weights
directly (Llama fuses them once per cache) reads them through ``effective_weight``, which adds
the adapters' deltas; adapters are never merged, so checkpoints always hold base and adapter apart.

mamba-ssm's fused CUDA training kernels read some of Mamba's projection weights directly
(``kernel_read_weights``), which skips adapters on them; Mamba's default target is therefore
``in_proj`` alone, and targeting the others draws a warning.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from audiolm.errors import ConfigError, MissingFileError

log = logging.getLogger(__name__)


@dataclass
class LoraSettings:
    """``task.lora`` config block: adapter rank and scale (``alpha / rank``), dropout, target module names
    (None: the adapted module's defaults), and ``base``, the checkpoint to finetune (tasks that train
    their own base model, such as TTS; ``runs.train`` loads it before fitting)."""

    rank: int
    alpha: float = 16.0
    dropout: float = 0.0
    target_modules: list[str] | None = None
    base: str | None = None

    def __post_init__(self) -> None:
        if self.rank < 1:
            raise ConfigError(f"task.lora.rank must be >= 1 to add adapters, got {self.rank}")
        self.target_modules = None if self.target_modules is None else [str(t) for t in self.target_modules]

    def to_dict(self) -> dict:
        return asdict(self)


def _targets(module: nn.Module, settings: LoraSettings, defaults: tuple[str, ...]) -> list[str]:
    targets = settings.target_modules or list(defaults)
    if not targets:
        raise ConfigError(
            f"no default LoRA targets for {type(module).__name__}; set task.lora.target_modules to module "
            f"names inside it (e.g. the names of its Linear layers)"
        )
    names = [n for n, _ in module.named_modules()]
    missing = [t for t in targets if not any(n == t or n.endswith("." + t) for n in names)]
    if missing:
        raise ConfigError(f"task.lora.target_modules {missing} name no module of {type(module).__name__}")
    bypassed = sorted(set(targets) & set(getattr(module, "kernel_read_weights", ())))
    if bypassed:
        log.warning(
            "LoRA on %s trains on CPU, but mamba-ssm's fused CUDA kernels read these weights directly and "
            "skip their adapters; on a GPU with mamba-ssm only the other targets adapt",
            bypassed,
        )
    return targets


def add_lora(module: nn.Module, settings: LoraSettings, defaults: tuple[str, ...] = ()) -> None:
    """Inject adapters into ``module`` (on ``settings.target_modules``, else ``defaults``) and leave only
    them trainable within it."""
    from peft import LoraConfig, inject_adapter_in_model

    settings.target_modules = _targets(
        module, settings, defaults
    )  # explicit, so an exported adapter says where it goes
    config = LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=settings.target_modules,
    )
    inject_adapter_in_model(config, module)
    for name, p in module.named_parameters():
        p.requires_grad = "lora_" in name
        if p.requires_grad:
            p.data = p.data.float()
    n = sum(p.numel() for p in module.parameters() if p.requires_grad)
    log.info("LoRA rank %d on %s: %.3fM trainable parameters", settings.rank, config.target_modules, n / 1e6)


def load_base(model: nn.Module, path: str) -> None:
    """The weights (and what travels with them, such as the codec state) of the checkpoint being
    finetuned, into ``model`` with its adapters."""
    from audiolm.checkpoints import model_weights, read_checkpoint

    if not Path(path).is_file():
        raise MissingFileError(
            f"task.lora.base checkpoint not found: {path}; give the checkpoint of the model to finetune"
        )
    state = read_checkpoint(Path(path))
    own = {k for k in model.state_dict() if "lora_" not in k}
    weights = {_adapted_name(k, own): v for k, v in model_weights(state["state_dict"]).items() if "lora_" not in k}
    if set(weights) != own:
        raise ConfigError(
            f"task.lora.base {path} does not fit this model (keys differ, e.g. "
            f"{sorted(set(weights) ^ own)[:3]}); use the model settings it was trained with"
        )
    model.load_state_dict(weights, strict=False)
    model.load_extra_state(state)


def _adapted_name(key: str, names: set[str]) -> str:
    """A plain model's weight name as it is inside an adapted layer
    (``q_proj.weight`` -> ``q_proj.base_layer.weight``)."""
    head, _, leaf = key.rpartition(".")
    adapted = f"{head}.base_layer.{leaf}"
    return adapted if key not in names and adapted in names else key


def lora_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """The adapter weights of ``module`` alone (PEFT's names, without the adapter name)."""
    from peft import get_peft_model_state_dict

    return {k: v.detach().cpu() for k, v in get_peft_model_state_dict(module).items()}


def load_lora(module: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Put exported adapter weights into a module that has adapters of the same settings."""
    from peft import set_peft_model_state_dict

    result = set_peft_model_state_dict(module, state)
    unexpected = getattr(result, "unexpected_keys", [])
    if unexpected:
        raise ConfigError(f"the adapter does not fit this model (unexpected keys, e.g. {unexpected[:3]})")


def effective_weight(linear: nn.Module) -> torch.Tensor:
    """A Linear's weight as its forward applies it: the base weight plus every active, unmerged LoRA delta."""
    if not hasattr(linear, "get_delta_weight"):
        return linear.weight
    weight = linear.get_base_layer().weight
    if linear.merged or linear.disable_adapters:
        return weight
    for name in linear.active_adapters:
        if name in linear.lora_A:
            weight = weight + linear.get_delta_weight(name)
    return weight
