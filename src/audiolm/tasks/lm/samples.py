"""Listening material for an audio LM: unconditional samples and continuations of held-out prompts.

For each continuation three files are written, so a listener can tell the model from the codec:
``prompt_k.wav`` (the prompt, through the codec), ``continuation_k.wav`` (prompt + generated) and
``reference_k.wav`` (the held-out clip itself, through the codec, same length).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from audiolm.audio.io import save_audio
from audiolm.data.datamodule import TokenDataModule

log = logging.getLogger(__name__)


def _write(path: Path, codes: torch.Tensor, task) -> str:
    """codes: [Q, F] -> WAV file through the task's codec."""
    wav = task.codec.decode(codes[None].to(task.codec.device))
    save_audio(path, wav[0], task.codec.sample_rate)
    return path.name


def write_lm_samples(task, datamodule: TokenDataModule, out_dir: Path, n_samples: int, sample_seconds: float,
                     prompt_seconds: float, batch_size: int, seed: int) -> list[dict]:
    """Generate and write WAVs under ``out_dir``; returns one row per file for the eval report."""
    codec, store = task.codec, datamodule.store
    n_frames = max(int(round(sample_seconds * codec.frame_rate)), 1)
    n_prompt = max(int(round(prompt_seconds * codec.frame_rate)), 1)
    generator = torch.Generator(device=task.device).manual_seed(seed)
    rows: list[dict] = []

    for start in range(0, n_samples, batch_size):
        b = min(batch_size, n_samples - start)
        codes = task.generate(n_frames, batch_size=b, generator=generator, progress=True).cpu()
        for k in range(b):
            name = _write(out_dir / f"unconditional_{start + k}.wav", codes[k], task)
            rows.append({"kind": "unconditional", "file": name, "seconds": n_frames / codec.frame_rate})

    # Prompts: the start of held-out clips long enough to hold prompt + continuation.
    candidates = [i for i in datamodule.val_indices if store.entries[i]["n_frames"] > n_prompt]
    picked = candidates[:n_samples]
    if len(picked) < n_samples:
        log.warning("only %d held-out clips are longer than the %ss prompt; writing %d continuations",
                    len(picked), prompt_seconds, len(picked))
    for start in range(0, len(picked), batch_size):
        ids = picked[start : start + batch_size]
        prompts = torch.stack([torch.as_tensor(store.codes(i)[:, :n_prompt].astype("int64")) for i in ids])
        codes = task.generate(n_frames, prompt=prompts, generator=generator, progress=True).cpu()
        for k, i in enumerate(ids):
            j = start + k
            reference = torch.as_tensor(store.codes(i)[:, :n_frames].astype("int64"))
            rows.append({"kind": "continuation", "file": _write(out_dir / f"continuation_{j}.wav", codes[k], task),
                         "prompt": _write(out_dir / f"prompt_{j}.wav", prompts[k], task),
                         "reference": _write(out_dir / f"reference_{j}.wav", reference, task),
                         "source": store.entries[i]["id"], "text": store.entries[i].get("text", "")})
    return rows
