"""Find the first module that produces a NaN or Inf, going forward or backward.

The seed found a bad RAM stick this way: softmax complained about NaN, and hooks on every module
named the layer whose output went non-finite first, which led to an Inf in its weights.

``NaNGuard.watch(model)`` hooks every submodule: a forward hook checks each output tensor and a
backward hook each gradient the module computes for its inputs. The first non-finite value raises
``NonFiniteError`` naming the module (its qualified name and class), the direction, which tensor,
and how many values are NaN / Inf. Forward hooks fire as modules finish and backward hooks as
their gradients are computed, innermost first either way, so the name is the smallest module
where the value appeared (a ``sqrt`` at 0 is finite forward and infinite backward: its module is
named). PyTorch refuses module backward hooks on a module whose output is later changed in place;
``backward=False`` then keeps the forward check.

As a Lightning callback it watches the task for the whole fit: ``python train.py ... debug=nan_guard``.
It costs a check per module output, so it is a debugging aid, not a default.
"""

from __future__ import annotations

import warnings
from typing import Any

import lightning as L
import torch
from torch import nn

from audiolm.errors import AudiolmError


class NonFiniteError(AudiolmError, RuntimeError):
    """A module produced NaN or Inf; the message names it."""


def _tensors(output: Any) -> list[torch.Tensor]:
    """The tensors inside a module's output (a tensor, a tuple / list / dict, a ModelOutput)."""
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, dict):
        output = list(output.values())
    if isinstance(output, (tuple, list)):
        return [t for item in output for t in _tensors(item)]
    return []


def _describe(t: torch.Tensor) -> str:
    nan, inf = int(torch.isnan(t).sum()), int(torch.isinf(t).sum())
    first = torch.nonzero(~torch.isfinite(t))[0].tolist()
    return f"{nan} NaN and {inf} Inf of {t.numel()} values (shape {list(t.shape)}, first at index {first})"


class NaNGuard(L.Callback):
    def __init__(self, backward: bool = True):
        self.backward = backward
        self._handles: list[Any] = []

    def watch(self, model: nn.Module) -> NaNGuard:
        """Hook every submodule of ``model`` (itself included, named ``<root>``)."""
        self.unwatch()
        # PyTorch warns about each module whose backward hook cannot fire (outputs that are not tensors,
        # e.g. transformers' ModelOutput) or fires on outputs only (frozen inputs): expected here.
        for message in ("For backward hooks to be called", "Full backward hook is firing"):
            warnings.filterwarnings("ignore", message=message)
        for name, module in model.named_modules():
            label = f"{name or '<root>'} ({type(module).__name__})"
            self._handles.append(module.register_forward_hook(self._forward_hook(label)))
            if self.backward:
                self._handles.append(module.register_full_backward_hook(self._backward_hook(label)))
        return self

    def unwatch(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def __enter__(self) -> NaNGuard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.unwatch()

    @staticmethod
    def _forward_hook(label: str):
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            for i, t in enumerate(_tensors(output)):
                if (t.is_floating_point() or t.is_complex()) and not bool(torch.isfinite(t).all()):
                    raise NonFiniteError(f"forward: module {label} output {i} has {_describe(t)}")

        return hook

    @staticmethod
    def _backward_hook(label: str):
        def hook(module: nn.Module, grad_input: tuple, grad_output: tuple) -> None:
            for i, g in enumerate(grad_input):
                if g is not None and not bool(torch.isfinite(g).all()):
                    raise NonFiniteError(
                        f"backward: module {label} computed a gradient for its input {i} with {_describe(g)}"
                    )

        return hook

    # -- as a Lightning callback ---------------------------------------------------------------
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.watch(pl_module)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.unwatch()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self.unwatch()
