"""Stopping work from the page.

Gradio's ``cancels=`` ends the event in the page at once, but the Python thread running
``model.generate`` goes on until it returns. So the Stop button also sets its session's stop flag,
and every forward pass of the resident model checks the flag of the job running in its thread (a
forward pre-hook on the model's modules): a decoding loop calls one of them at every step, so a
stopped job ends within a step. Handlers check between their stages too (``Jobs.check``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from torch import nn

from audiolm.errors import AudiolmError

HOOK_DEPTH = 2  # the model's children and grandchildren: every decoding step calls one of them


class Stopped(AudiolmError):
    """The job was stopped from the page."""


class Jobs:
    """One stop flag per page session; the job running in a thread knows its own."""

    def __init__(self) -> None:
        self._flags: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._local = threading.local()

    @contextmanager
    def running(self, session: str) -> Iterator[None]:
        """Run a job for ``session`` in this thread: a Stop from that session stops it."""
        flag = threading.Event()
        with self._lock:
            self._flags[session] = flag
        self._local.flag = flag
        try:
            yield
        finally:
            self._local.flag = None
            with self._lock:
                if self._flags.get(session) is flag:
                    del self._flags[session]

    def stop(self, session: str) -> None:
        """Stop the job ``session`` is running, if any."""
        with self._lock:
            flag = self._flags.get(session)
        if flag is not None:
            flag.set()

    def check(self, *_: Any) -> None:
        """Raise ``Stopped`` when the job running in this thread was stopped (also a forward pre-hook)."""
        flag = getattr(self._local, "flag", None)
        if flag is not None and flag.is_set():
            raise Stopped("stopped from the page")

    def watch(self, model: nn.Module) -> None:
        """Make ``model``'s forward passes check the stop flag of the job that runs them."""
        for name, module in model.named_modules():
            if name and name.count(".") < HOOK_DEPTH:
                module.register_forward_pre_hook(self.check)
