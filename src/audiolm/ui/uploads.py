"""Uploaded clips, read with the page's limits.

Gradio refuses files over ``--max-upload-mb`` before they reach a handler; what arrives is read with
``audio.media`` (any audio or video file, streamed), refused in one line when it cannot be decoded,
holds no samples or lasts longer than ``--max-clip-seconds`` (decoding stops at the limit, so a long
file costs no more than the limit).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from audiolm.audio.media import open_media
from audiolm.errors import DataError
from audiolm.tasks.inference import Audio


def read_upload(path: str | Path, what: str, sample_rate: int, max_seconds: float) -> Audio:
    """The uploaded file at ``path`` as mono ``Audio`` at ``sample_rate``; ``what`` names it in errors
    (e.g. "the reference voice")."""
    name = f"{what} ({Path(path).name})"
    limit = int(max_seconds * sample_rate)
    try:
        with open_media(path) as media:
            if media.duration is not None and media.duration > max_seconds:
                raise DataError(_too_long(media.duration, max_seconds))
            blocks = list(media.blocks(sample_rate, max_samples=limit + 1))
    except DataError as err:
        raise DataError(f"{name}: {err}") from None
    wav = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
    if len(wav) > limit:
        raise DataError(f"{name}: {_too_long(len(wav) / sample_rate, max_seconds, at_least=True)}")
    if len(wav) == 0:
        raise DataError(f"{name}: holds no audio samples; upload a recording")
    return Audio(torch.from_numpy(np.ascontiguousarray(wav))[None], sample_rate)


def _too_long(seconds: float, max_seconds: float, at_least: bool = False) -> str:
    return (
        f"{'over ' if at_least else ''}{seconds:.1f} s long; this page takes clips of at most {max_seconds:g} s "
        f"(the server's --max-clip-seconds): upload a shorter clip"
    )
