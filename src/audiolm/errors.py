"""Errors caused by what the user gave (config, data, weights), with a message that says how to fix it.

Entry points print these as one clear message instead of a stack trace.
"""


class AudiolmError(Exception):
    """Base of every user-facing error."""


class ConfigError(AudiolmError):
    """A config value is missing, unknown or inconsistent."""


class DataError(AudiolmError):
    """A data folder, manifest or audio file is missing or unusable."""
