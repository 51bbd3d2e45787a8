"""A speaker prompt from a user's audio file: checked, converted, cut and encoded.

Any channel count and sample rate is accepted (downmixed to mono, resampled to the codec's rate).
A silent file or one shorter than a codec frame is an error that says so; a prompt shorter than
``MIN_SECONDS`` is used with a warning; a longer one than the training prompts is cut to their
length, keeping the start.
"""

from __future__ import annotations

import logging
from pathlib import Path

import soundfile as sf
import torch

from audiolm.audio.io import load_audio
from audiolm.errors import DataError, MissingFileError

log = logging.getLogger(__name__)
SILENT_PEAK = 10 ** (-60 / 20)  # -60 dBFS: below this nothing a codec would keep
MIN_SECONDS = 1.0


@torch.inference_mode()
def load_prompt(path: str | Path, task) -> torch.Tensor:
    """path -> prompt codes [Q, Fp] for ``task`` (its codec and prompt length)."""
    path, codec = Path(path), task.codec
    if not path.is_file():
        raise MissingFileError(f"prompt audio not found: {path}")
    try:
        info = sf.info(str(path))
    except RuntimeError as e:
        raise DataError(f"cannot read the prompt {path}: {e}. Give a WAV/FLAC/OGG/MP3 recording of the voice") from None
    if info.channels != 1 or info.samplerate != codec.sample_rate:
        log.info("prompt %s: %d channel(s) at %d Hz -> mono at %d Hz", path.name, info.channels, info.samplerate,
                 codec.sample_rate)
    wav = load_audio(path, codec.sample_rate)  # [1, T]
    seconds = wav.shape[-1] / codec.sample_rate
    min_samples = int(codec.sample_rate / codec.frame_rate) + 1
    if wav.shape[-1] < min_samples:
        raise DataError(f"the prompt {path} is {seconds * 1000:.0f} ms long, shorter than one codec frame; give at "
                        f"least {MIN_SECONDS:.0f} s (about {task.prompt_frames / codec.frame_rate:.0f} s works best)")
    peak = float(wav.abs().max())
    if peak < SILENT_PEAK:
        raise DataError(f"the prompt {path} is silent (peak {20 * torch.log10(torch.tensor(max(peak, 1e-12))):.0f} "
                        f"dBFS); give a recording of the voice to imitate, or synthesise without a prompt")
    if seconds < MIN_SECONDS:
        log.warning("the prompt %s is only %.2f s long; the model learned from %.1f s prompts, so the voice may "
                    "follow it loosely", path.name, seconds, task.prompt_frames / codec.frame_rate)
    codes = codec.encode(wav[None].to(codec.device))[0].cpu()  # [Q, F]
    if codes.shape[1] > task.prompt_frames:
        log.info("prompt cut to its first %.1f s (the training prompt length)", task.prompt_frames / codec.frame_rate)
    return codes[:, : task.prompt_frames]
