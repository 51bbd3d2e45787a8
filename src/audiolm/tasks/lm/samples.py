"""Listening material for an audio LM: unconditional samples and continuations of held-out prompts.

For each continuation three files are written, so a listener can tell the model from the codec:
``prompt_k.wav`` (the prompt, through the codec), ``continuation_k.wav`` (prompt + generated) and
``reference_k.wav`` (the held-out clip itself, through the codec, same length).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from audiolm.data.datamodule import TokenDataModule
from audiolm.tasks.base import Samples
from audiolm.tasks.inference import ContinueRequest
from audiolm.tasks.lm.model import AudioLM

log = logging.getLogger(__name__)


def write_lm_samples(
    model: AudioLM,
    datamodule: TokenDataModule,
    out_dir: Path,
    n_samples: int,
    sample_seconds: float,
    prompt_seconds: float,
    batch_size: int,
    seed: int,
) -> Samples:
    """Generate and write WAVs under ``out_dir``; one row per written sample."""
    store, rows = datamodule.store, []
    n_frames, n_prompt = model.seconds_to_frames(sample_seconds), model.seconds_to_frames(prompt_seconds)
    n_frames = _within_training_window(n_frames, datamodule.max_frames, model.codec.frame_rate)
    seconds = n_frames / model.codec.frame_rate
    _warn_if_long(model, n_frames, 2 * -(-n_samples // batch_size))
    torch.manual_seed(seed)  # one seed for the whole set; each batch draws on from the global generator

    for start in range(0, n_samples, batch_size):
        b = min(batch_size, n_samples - start)
        result = model.generate(ContinueRequest(seconds, n=b, seed=None, progress=True))
        for k, audio in enumerate(result.audio):
            audio.save(out_dir / f"unconditional_{start + k}.wav")
            rows.append({"kind": "unconditional", "file": f"unconditional_{start + k}.wav", "seconds": seconds})

    # Prompts: the start of held-out clips long enough to hold prompt + continuation.
    candidates = [i for i in datamodule.val_indices if store.entries[i]["n_frames"] > n_prompt]
    picked = candidates[:n_samples]
    if len(picked) < n_samples:
        log.warning(
            "only %d held-out clips are longer than the %ss prompt; writing %d continuations",
            len(picked),
            prompt_seconds,
            len(picked),
        )
    for start in range(0, len(picked), batch_size):
        ids = picked[start : start + batch_size]
        prompts = torch.stack([torch.as_tensor(store.codes(i)[:, :n_prompt].astype("int64")) for i in ids])
        result = model.generate(ContinueRequest(seconds, prompt=prompts, seed=None, progress=True))
        for k, i in enumerate(ids):
            j = start + k
            reference = torch.as_tensor(store.codes(i)[:, :n_frames].astype("int64"))
            result.audio[k].save(out_dir / f"continuation_{j}.wav")
            model.decode_codes(prompts[k]).save(out_dir / f"prompt_{j}.wav")
            model.decode_codes(reference).save(out_dir / f"reference_{j}.wav")
            rows.append(
                {
                    "kind": "continuation",
                    "file": f"continuation_{j}.wav",
                    "prompt": f"prompt_{j}.wav",
                    "reference": f"reference_{j}.wav",
                    "source": store.entries[i]["id"],
                    "text": store.entries[i].get("text", ""),
                }
            )
    return Samples(rows)


def _within_training_window(n_frames: int, trained: int, frame_rate: float) -> int:
    """Samples no longer than the windows the model was trained on: it has never seen a longer context."""
    if n_frames > trained:
        log.warning(
            "eval.sample_seconds=%.1f is longer than the %.1f s windows this model was trained on "
            "(data.segment_seconds); samples are cut to %.1f s",
            n_frames / frame_rate,
            trained / frame_rate,
            trained / frame_rate,
        )
    return min(n_frames, trained)


PROBE_FRAMES = 16
LONG_SECONDS = 120.0


def _warn_if_long(model: AudioLM, n_frames: int, n_batches: int) -> None:
    """Measure a few decoding steps and warn, with the estimate, when the samples would take minutes: a
    codec with many frames a second (mulaw: one per sample) turns seconds of audio into tens of
    thousands of sequential steps."""
    steps, probe_steps = model.pattern.num_steps(n_frames), model.pattern.num_steps(PROBE_FRAMES)
    if steps <= 4 * probe_steps:
        return
    start = time.perf_counter()
    model.generate_codes(PROBE_FRAMES, batch_size=1)
    per_step = (time.perf_counter() - start) / probe_steps
    estimate = per_step * steps * n_batches
    if estimate > LONG_SECONDS:
        log.warning(
            "the samples take %d decoding steps each (%.0f frames a second through %s); at the measured "
            "%.0f steps/s that is about %.0f min. Lower eval.sample_seconds or eval.n_samples for a "
            "quicker look",
            steps,
            model.codec.frame_rate,
            type(model.pattern).__name__,
            1 / per_step,
            estimate / 60,
        )
