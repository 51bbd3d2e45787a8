"""Listening material and scores for a TTS model: held-out texts spoken in held-out voices.

For held-out utterance k three files are written: ``sample_k.wav`` (its text, spoken in the voice
of ``prompt_k.wav``, another utterance of the same speaker through the codec) and
``reference_k.wav`` (the utterance itself through the codec). With ``asr_checkpoint`` the samples
are transcribed and scored (``tts/wer``, ``tts/cer`` against the text); with ``speaker_model`` each
sample's speaker similarity to its prompt is measured (``tts/speaker_similarity``, the mean cosine).
Without them the scores are skipped with a note in the eval report.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from audiolm.data.datamodule import TokenDataModule
from audiolm.metrics.tts import SpeakerEmbedder, error_rates
from audiolm.tasks.base import Samples
from audiolm.tasks.inference import Audio
from audiolm.text.transcribe import WhisperTranscriber

if TYPE_CHECKING:  # speech.py imports this module for SpeechTask.write_samples
    from audiolm.tasks.tts.speech import SpeechModel

log = logging.getLogger(__name__)


def write_tts_samples(
    model: SpeechModel,
    datamodule: TokenDataModule,
    out_dir: Path,
    n_samples: int,
    batch_size: int,
    seed: int,
    max_seconds: float,
    asr_checkpoint: str | None = None,
    speaker_model: str | None = None,
) -> Samples:
    """Synthesise ``n_samples`` held-out texts under ``out_dir``: one row per sample, scores, skipped scores."""
    store = datamodule.store
    items = datamodule.items(store, datamodule.val_indices, datamodule.max_frames, False)
    generator = torch.Generator(device=model.device).manual_seed(seed)
    max_frames = model.seconds_to_frames(max_seconds)
    rows, clips, notes = [], [], []
    if max_frames > datamodule.max_frames:  # no training utterance was longer: the guard only has to stop a runaway
        notes.append(
            f"eval.max_seconds={max_seconds:g} is longer than any training utterance (data.segment_seconds="
            f"{datamodule.segment_seconds:g}); samples stop there"
        )
        max_frames = datamodule.max_frames
    for k in range(min(n_samples, len(items))):
        item, entry = items[k], store.entries[items.indices[k]]
        codes = model.generate_codes(item["phonemes"].tolist(), item["prompt"], max_frames, generator=generator)[0]
        sample, prompt = model.decode_codes(codes), model.decode_codes(item["prompt"])
        for name, clip in (
            (f"sample_{k}.wav", sample),
            (f"prompt_{k}.wav", prompt),
            (f"reference_{k}.wav", model.decode_codes(item["codes"])),
        ):
            clip.save(out_dir / name)
        rows.append(
            {
                "kind": "tts",
                "file": f"sample_{k}.wav",
                "prompt": f"prompt_{k}.wav",
                "reference": f"reference_{k}.wav",
                "text": entry.get("text", ""),
                "source": entry["id"],
                "seconds": codes.shape[1] / model.codec.frame_rate,
            }
        )
        clips.append((sample, prompt))
    if len(rows) < n_samples:
        notes.append(f"only {len(rows)} held-out utterances fit data.segment_seconds; wrote {len(rows)} samples")
    metrics = {}
    if not rows:
        notes.append("no samples, so no scores")
    elif asr_checkpoint:
        metrics.update(_asr_scores(model, rows, clips, asr_checkpoint))
    else:
        notes.append("WER/CER skipped: set eval.asr_checkpoint=/path/to/whisper.pt (openai-whisper) to score them")
    if rows and speaker_model:
        metrics["tts/speaker_similarity"] = _speaker_similarity(model, rows, clips, speaker_model)
    elif rows:
        notes.append("speaker similarity skipped: set eval.speaker_model=/path/to/x-vector model folder to score it")
    for note in notes:
        log.info(note)
    return Samples(rows, metrics, notes)


def _asr_scores(
    model: SpeechModel, rows: list[dict], clips: list[tuple[Audio, Audio]], checkpoint: str
) -> dict[str, float]:
    language = model.text.language.split("-")[0]
    asr = WhisperTranscriber(checkpoint, language=language, device=str(model.device), config_key="eval.asr_checkpoint")
    for row, (sample, _) in zip(rows, clips, strict=True):
        row["transcript"] = asr(sample.wav, sample.sample_rate)
    scores = error_rates([r["transcript"] for r in rows], [r["text"] for r in rows])
    return {f"tts/{k}": v for k, v in scores.items()}


def _speaker_similarity(model: SpeechModel, rows: list[dict], clips: list[tuple[Audio, Audio]], path: str) -> float:
    embedder = SpeakerEmbedder(path, device=str(model.device))
    for row, (sample, prompt) in zip(rows, clips, strict=True):
        row["speaker_similarity"] = embedder.similarity(sample.wav, prompt.wav, sample.sample_rate)
    return sum(r["speaker_similarity"] for r in rows) / len(rows)
