"""Listening material and judged scores for an audio LM: unconditional samples and continuations of
held-out prompts.

For each continuation three files are written, so a listener can tell the model from the codec:
``prompt_k.wav`` (the prompt, through the codec), ``continuation_k.wav`` (prompt + generated) and
``reference_k.wav`` (the held-out clip itself, through the codec, same length).

The judges of ``eval.judges`` (``audiolm.judges``) hear only the generated part of a continuation (the
prompt's samples cut off, so the re-decoded prompt never earns a score), and likewise the reference's
part after the prompt, its ceiling (``lm/ref_*``):

- ``lm/sim_own``, ``lm/sim_other``, ``lm/sim_margin``: speaker similarity to its own prompt, to the
  other continuations' prompts (other speakers' where the store names speakers), and the difference;
- ``lm/dnsmos_ovrl``, ``lm/dnsmos_p808``: DNSMOS, gated by a VAD; ``lm/speech_fraction``;
- the ASR transcript, in metrics.json's rows only (an LM has no text to score against); pocketsphinx
  with an LM of the training split's texts when the store has them.

Unconditional samples get DNSMOS and speech fraction (``lm/uncond_*``).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from audiolm.data.datamodule import TokenDataModule
from audiolm.tasks.base import Samples
from audiolm.tasks.inference import Audio, ContinueRequest
from audiolm.tasks.judging import DEFAULT_JUDGES, EvalJudges, spread_over_speakers, training_texts
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
    judges: list[str] | tuple[str, ...] = DEFAULT_JUDGES,
    asr_checkpoint: str | None = None,
    speaker_model: str | None = None,
) -> Samples:
    """Generate and write WAVs under ``out_dir`` and judge them (``judges``: names from ``eval.judges``;
    empty: no scores, with a note; ``asr_checkpoint`` / ``speaker_model``: a Whisper .pt / an x-vector
    folder in place of pocketsphinx / resemblyzer); one row per written sample."""
    judges = [judges] if isinstance(judges, str) else list(judges or [])  # eval.judges=asr / null
    store, rows, unconditional = datamodule.store, [], []
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
            unconditional.append(audio)
            rows.append({"kind": "unconditional", "file": f"unconditional_{start + k}.wav", "seconds": seconds})

    # Prompts: the start of held-out clips long enough to hold prompt + continuation.
    # One clip of each held-out speaker in turn, so each continuation has other speakers' prompts to be told from.
    candidates = [i for i in datamodule.val_indices if store.entries[i]["n_frames"] > n_prompt]
    picked = [
        candidates[p] for p in spread_over_speakers([store.entries[i].get("speaker") for i in candidates], n_samples)
    ]
    if len(picked) < n_samples:
        log.warning(
            "only %d held-out clips are longer than the %ss prompt; writing %d continuations",
            len(picked),
            prompt_seconds,
            len(picked),
        )
    continuations, prompt_clips, references, prompt_seconds = [], [], [], 0.0
    for start in range(0, len(picked), batch_size):
        ids = picked[start : start + batch_size]
        prompts = torch.stack([torch.as_tensor(store.codes(i)[:, :n_prompt].astype("int64")) for i in ids])
        result = model.generate(ContinueRequest(seconds, prompt=prompts, seed=None, progress=True))
        prompt_seconds = result.prompt_seconds
        for k, i in enumerate(ids):
            j = start + k
            reference = model.decode_codes(torch.as_tensor(store.codes(i)[:, :n_frames].astype("int64")))
            prompt = model.decode_codes(prompts[k])
            for name, clip in (("continuation", result.audio[k]), ("prompt", prompt), ("reference", reference)):
                clip.save(out_dir / f"{name}_{j}.wav")
            continuations.append(result.audio[k])
            prompt_clips.append(prompt)
            references.append(reference)
            rows.append(
                {
                    "kind": "continuation",
                    "file": f"continuation_{j}.wav",
                    "prompt": f"prompt_{j}.wav",
                    "reference": f"reference_{j}.wav",
                    "source": store.entries[i]["id"],
                    "text": store.entries[i].get("text", ""),
                    "speaker": store.entries[i].get("speaker"),
                }
            )
    notes: list[str] = []
    judging = EvalJudges(
        judges,
        lm_texts=training_texts(datamodule) if "asr" in judges and not asr_checkpoint else None,
        asr_checkpoint=asr_checkpoint,
        speaker_model=speaker_model,
        device=str(model.device),
        notes=notes,
    )
    uncond_rows = [r for r in rows if r["kind"] == "unconditional"]
    metrics = {}
    for name in ("dnsmos", "speech_fraction"):
        metrics |= judging.run(name, unconditional, uncond_rows, "lm/uncond_")
    cont_rows = [r for r in rows if r["kind"] == "continuation"]
    metrics |= judge_continuations(judging, cont_rows, continuations, prompt_clips, references, prompt_seconds)
    for note in notes:
        log.info(note)
    return Samples(rows, metrics, notes)


def generated_part(clip: Audio, prompt_seconds: float) -> Audio:
    """``clip`` less its first ``prompt_seconds``: what the model generated after the prompt."""
    return Audio(clip.wav[..., round(prompt_seconds * clip.sample_rate) :], clip.sample_rate)


def judge_continuations(
    judging: EvalJudges,
    rows: list[dict],
    continuations: list[Audio],
    prompts: list[Audio],
    references: list[Audio],
    prompt_seconds: float,
) -> dict[str, float]:
    """Judge the generated part of each continuation (and of its reference, ``ref_`` keys) against its
    prompt; each row gets its scores and ``generated_seconds``."""
    if not rows:
        return {}
    generated = [generated_part(c, prompt_seconds) for c in continuations]
    held_out = [generated_part(r, prompt_seconds) for r in references]
    for row, clip in zip(rows, generated, strict=True):
        row["generated_seconds"] = clip.seconds
    speakers = [r.get("speaker") or r["source"] for r in rows] if all(r.get("speaker") for r in rows) else None
    metrics = {}
    for key_prefix, clips, key in (("", generated, "file"), ("ref_", held_out, "reference")):
        labels = [f"{r[key]} after the prompt" for r in rows]
        # An LM has no text to say, so its transcripts are read, not scored: the ASR judge needs a text
        # per clip, and its wer/cer against this stand-in are dropped.
        texts = ["unscored"] * len(clips)
        metrics |= judging.run("asr", clips, rows, "lm/", key_prefix, labels=labels, keep={"transcript"}, texts=texts)
        metrics |= judging.run(
            "speaker", clips, rows, "lm/", key_prefix, labels=labels, references=prompts, speakers=speakers
        )
        for name in ("dnsmos", "speech_fraction"):
            metrics |= judging.run(name, clips, rows, "lm/", key_prefix, labels=labels)
    return metrics


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
