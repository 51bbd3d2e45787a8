"""Errors caused by what the user gave (config, data, weights), with a message that says how to fix it.

Entry points print these as one clear message instead of a stack trace. Each also derives from the
builtin error it refines, so callers that catch ``ValueError`` or ``FileNotFoundError`` still do.
"""


class AudiolmError(Exception):
    """Base of every user-facing error."""


class ConfigError(AudiolmError, ValueError):
    """A config value is missing, unknown or inconsistent."""


class DataError(AudiolmError, ValueError):
    """A manifest, token store or corpus is unusable."""


class MissingFileError(AudiolmError, FileNotFoundError):
    """A file or folder the run needs does not exist."""


class MissingToolError(AudiolmError, RuntimeError):
    """A system program the run needs (e.g. espeak-ng) is not installed."""


class StoreError(AudiolmError, RuntimeError):
    """A token store is incomplete or damaged, or tokenisation could not produce it."""
