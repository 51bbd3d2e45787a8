"""Listening material and scores for a TTS checkpoint: held-out texts spoken in held-out voices.

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

import torch

from audiolm.audio.io import save_audio
from audiolm.metrics.tts import SpeakerEmbedder, error_rates
from audiolm.text.transcribe import WhisperTranscriber

log = logging.getLogger(__name__)


def _wav(task, codes: torch.Tensor) -> torch.Tensor:
    """codes [Q, F] -> wav [1, T] through the task's codec."""
    return task.codec.decode(codes[None].to(task.codec.device))[0].cpu()


def write_tts_samples(task, datamodule, out_dir: Path, n_samples: int, batch_size: int, seed: int,
                      max_seconds: float, asr_checkpoint: str | None = None,
                      speaker_model: str | None = None) -> dict:
    """Synthesise ``n_samples`` held-out texts: ``{"samples": rows, "metrics": scores, "notes": skipped scores}``."""
    out_dir, codec, store = Path(out_dir), task.codec, datamodule.store
    items = datamodule.items(store, datamodule.val_indices, datamodule.max_frames, False)
    generator = torch.Generator(device=task.device).manual_seed(seed)
    max_frames = max(int(max_seconds * codec.frame_rate), 1)
    rows, clips, notes = [], [], []
    for k in range(min(n_samples, len(items))):
        item, entry = items[k], store.entries[items.indices[k]]
        codes = task.generate(item["phonemes"].tolist(), item["prompt"], max_frames, generator=generator)[0]
        wav, prompt = _wav(task, codes), _wav(task, item["prompt"])
        for name, clip in ((f"sample_{k}.wav", wav), (f"prompt_{k}.wav", prompt), (f"reference_{k}.wav", _wav(task, item["codes"]))):
            save_audio(out_dir / name, clip, codec.sample_rate)
        rows.append({"kind": "tts", "file": f"sample_{k}.wav", "prompt": f"prompt_{k}.wav",
                     "reference": f"reference_{k}.wav", "text": entry.get("text", ""), "source": entry["id"],
                     "seconds": codes.shape[1] / codec.frame_rate})
        clips.append((wav, prompt))
    if len(rows) < n_samples:
        notes.append(f"only {len(rows)} held-out utterances fit data.segment_seconds; wrote {len(rows)} samples")
    metrics = {}
    if not rows:
        notes.append("no samples, so no scores")
    elif asr_checkpoint:
        metrics.update(_asr_scores(task, rows, clips, asr_checkpoint))
    else:
        notes.append("WER/CER skipped: set eval.asr_checkpoint=/path/to/whisper.pt (openai-whisper) to score them")
    if rows and speaker_model:
        metrics["tts/speaker_similarity"] = _speaker_similarity(task, rows, clips, speaker_model)
    elif rows:
        notes.append("speaker similarity skipped: set eval.speaker_model=/path/to/x-vector model folder to score it")
    for note in notes:
        log.info(note)
    return {"samples": rows, "metrics": metrics, "notes": notes}


def _asr_scores(task, rows: list[dict], clips: list, checkpoint: str) -> dict[str, float]:
    language = task.text.language.split("-")[0]
    asr = WhisperTranscriber(checkpoint, language=language, device=str(task.device), config_key="eval.asr_checkpoint")
    for row, (wav, _) in zip(rows, clips):
        row["transcript"] = asr(wav, task.codec.sample_rate)
    scores = error_rates([r["transcript"] for r in rows], [r["text"] for r in rows])
    return {f"tts/{k}": v for k, v in scores.items()}


def _speaker_similarity(task, rows: list[dict], clips: list, model: str) -> float:
    embedder = SpeakerEmbedder(model, device=str(task.device))
    for row, (wav, prompt) in zip(rows, clips):
        row["speaker_similarity"] = embedder.similarity(wav, prompt, task.codec.sample_rate)
    return sum(r["speaker_similarity"] for r in rows) / len(rows)
