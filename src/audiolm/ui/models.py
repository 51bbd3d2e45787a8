"""The one resident model: loaded through ``checkpoints.load_model`` (as the CLIs and notebooks load it),
cached until another run or device is chosen, and used by one job at a time.

Jobs take turns on it because the page's sampler settings and parallel-TTS steps are set on the
model for each request (``use_sampler``, ``use_steps``), as ``sampling.*`` and
``task.model.mode.steps`` overrides set them when a CLI builds it.
"""

from __future__ import annotations

import gc
import inspect
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from audiolm.errors import AudiolmError, ConfigError
from audiolm.generation.sampling import Sampler
from audiolm.tasks.inference import CaptionRequest, ContinueRequest, SpeechRequest

SAMPLER_KEYS = tuple(inspect.signature(Sampler).parameters)  # temperature, top_k, ..., cfg_rescale
# What each family's request is for, in the words of the tab that sends it.
FAMILIES = {
    SpeechRequest: "text to speech (a task=tts or task=tts_parallel run)",
    ContinueRequest: "audio continuation (a task=lm run)",
    CaptionRequest: "captioning (a task=caption run)",
}


def devices() -> list[str]:
    """Where a model can run here."""
    return ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


def run_sampling(model: Any) -> dict[str, float]:
    """The sampler settings the model was built with (its run's ``sampling`` group)."""
    sampler = getattr(model, "sampler", None) or Sampler()
    return {k: getattr(sampler, k) for k in SAMPLER_KEYS}


def use_sampler(model: Any, settings: dict[str, float]) -> None:
    """Set ``settings`` (``Sampler`` keys) on ``model``: a fresh ``Sampler`` checks them with the CLI's messages."""
    model.use_sampler(Sampler(**settings))


def steps_of(model: Any) -> int | None:
    """The demasking steps of a parallel TTS model in NAR mode (None for any other model)."""
    return getattr(getattr(model, "mode", None), "steps", None)


def use_steps(model: Any, steps: int) -> None:
    """Set the demasking steps of a parallel NAR model (what ``task.model.mode.steps`` sets)."""
    if steps < 1:
        raise ConfigError(f"task.model.mode.steps must be >= 1, got {steps}")
    model.mode.steps = int(steps)


class ModelSlot:
    """Holds at most one model; ``load`` replaces it, ``use`` lends it to one job at a time."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.model: Any = None
        self.key: tuple[Path, str] | None = None

    def load(self, path: Path, device: str, prepare: Callable[[Any], None] | None = None) -> Any:
        """The model of ``path`` on ``device``: the resident one when it is that, else loaded after the
        resident one is released (two never share the memory); ``prepare(model)`` runs once on a new one."""
        from audiolm.checkpoints import load_model

        if device not in devices():
            raise AudiolmError(f"device {device!r} is not available here; choose one of {devices()}")
        with self._lock:
            if self.key == (path, device):
                return self.model
            self.model, self.key = None, None
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            model = load_model(path, device=device)
            if prepare is not None:
                prepare(model)
            self.model, self.key = model, (path, device)
            return model

    def mismatch(self, request: type) -> str | None:
        """Why the resident model cannot answer ``request`` (one line), or None when it can."""
        model = self.model
        if model is None:
            return f"no model loaded: pick a run for {FAMILIES[request]} in the Model tab and load it"
        if model.Request is not request:
            return (
                f"the loaded {type(model).__name__} does {FAMILIES[model.Request]}, not {FAMILIES[request]}: "
                f"load such a run in the Model tab"
            )
        return None

    @contextmanager
    def use(self, request: type) -> Iterator[Any]:
        """The resident model, for a job that sends ``request``; refused in one line when it answers another."""
        with self._lock:
            why = self.mismatch(request)
            if why is not None:
                raise AudiolmError(why)
            yield self.model
