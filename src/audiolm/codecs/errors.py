"""Errors a codec raises when it cannot be built here: a missing package or missing weights.

Entry points catch :class:`CodecUnavailableError` and print its message without a stack trace,
so the message itself must say what is missing and the exact command or setting that fixes it.
"""

from __future__ import annotations

from audiolm.errors import AudiolmError


class CodecUnavailableError(AudiolmError):
    """A codec's package or pretrained files are not available; the message says how to fix it."""
