"""A speaker prompt from a user's audio file: found, readable, converted to mono at the model's rate.

Any channel count and sample rate is accepted. What the model then checks and cuts (a silent clip,
one shorter than a codec frame, one longer than the training prompts) is
``SpeechModel.encode_prompt``'s.
"""

from __future__ import annotations

import logging
from pathlib import Path

import soundfile as sf

from audiolm.errors import DataError, MissingFileError
from audiolm.tasks.inference import Audio

log = logging.getLogger(__name__)


def read_prompt(path: str | Path, sample_rate: int) -> Audio:
    """path -> the recording as mono ``Audio`` at ``sample_rate`` (the codec's)."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"prompt audio not found: {path}")
    try:
        info = sf.info(str(path))
    except RuntimeError as e:
        raise DataError(f"cannot read the prompt {path}: {e}. Give a WAV/FLAC/OGG/MP3 recording of the voice") from None
    if info.channels != 1 or info.samplerate != sample_rate:
        log.info(
            "prompt %s: %d channel(s) at %d Hz -> mono at %d Hz", path.name, info.channels, info.samplerate, sample_rate
        )
    return Audio.load(path, sample_rate)
