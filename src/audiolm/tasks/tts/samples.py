"""Listening material and judged scores for a TTS model: held-out texts spoken in held-out voices.

For held-out utterance k three files are written: ``sample_k.wav`` (its text, spoken in the voice
of ``prompt_k.wav``, another utterance of the same speaker through the codec) and
``reference_k.wav`` (the utterance itself through the codec). The judges of ``eval.judges``
(``audiolm.judges``) then score samples and references alike, so each score has its ceiling beside it:

- ``tts/wer``, ``tts/cer``: the samples' ASR transcripts against their texts; ``tts/ref_wer``,
  ``tts/ref_cer``: the same judge on the references. Whisper from ``eval.asr_checkpoint`` when given,
  else pocketsphinx with an LM of the training split's texts (never the held-out ones).
- ``tts/sim_own``, ``tts/sim_other``, ``tts/sim_margin``: speaker similarity to the sample's own prompt,
  to the other speakers' prompts, and the difference (``tts/ref_sim_*`` for the references). The
  x-vector folder ``eval.speaker_model`` when given, else resemblyzer.
- ``tts/dnsmos_ovrl``, ``tts/dnsmos_p808`` (and ``tts/ref_dnsmos_*``): DNSMOS, gated by a VAD.
- ``tts/speech_fraction`` (and ``tts/ref_speech_fraction``): the share silero-vad hears as speech.

Each row of metrics.json holds its sample's scores and transcripts; notes say what was skipped.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from audiolm.data.datamodule import TokenDataModule
from audiolm.tasks.base import Samples
from audiolm.tasks.inference import Audio
from audiolm.tasks.judging import DEFAULT_JUDGES, EvalJudges, spread_over_speakers, training_texts

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
    judges: list[str] | tuple[str, ...] = DEFAULT_JUDGES,
) -> Samples:
    """Synthesise ``n_samples`` held-out texts under ``out_dir`` and judge them (``judges``: names from
    ``eval.judges``; empty: no scores, with a note): one row per sample, the scores, notes."""
    judges = [judges] if isinstance(judges, str) else list(judges or [])  # eval.judges=asr / null
    store = datamodule.store
    items = datamodule.items(store, datamodule.val_indices, datamodule.max_frames, False)
    generator = torch.Generator(device=model.device).manual_seed(seed)
    max_frames = model.seconds_to_frames(max_seconds)
    rows, notes = [], []
    samples, prompts, references = [], [], []
    if max_frames > datamodule.max_frames:  # no training utterance was longer: the guard only has to stop a runaway
        notes.append(
            f"eval.max_seconds={max_seconds:g} is longer than any training utterance (data.segment_seconds="
            f"{datamodule.segment_seconds:g}); samples stop there"
        )
        max_frames = datamodule.max_frames
    # One utterance of each held-out speaker in turn, so every sample has other speakers to be told from.
    picked = spread_over_speakers([store.entries[i].get("speaker") for i in items.indices], n_samples)
    for k, position in enumerate(picked):
        item, entry = items[position], store.entries[items.indices[position]]
        codes = model.generate_codes(item["phonemes"].tolist(), item["prompt"], max_frames, generator=generator)[0]
        clips = (model.decode_codes(codes), model.decode_codes(item["prompt"]), model.decode_codes(item["codes"]))
        for name, clip in zip((f"sample_{k}.wav", f"prompt_{k}.wav", f"reference_{k}.wav"), clips, strict=True):
            clip.save(out_dir / name)
        for kept, clip in zip((samples, prompts, references), clips, strict=True):
            kept.append(clip)
        rows.append(
            {
                "kind": "tts",
                "file": f"sample_{k}.wav",
                "prompt": f"prompt_{k}.wav",
                "reference": f"reference_{k}.wav",
                "text": entry.get("text", ""),
                "source": entry["id"],
                "speaker": entry.get("speaker"),
                "seconds": codes.shape[1] / model.codec.frame_rate,
            }
        )
    if len(rows) < n_samples:
        notes.append(f"only {len(rows)} held-out utterances fit data.segment_seconds; wrote {len(rows)} samples")
    metrics = {}
    if not rows:
        notes.append("no samples, so no scores")
    else:
        judging = EvalJudges(
            judges,
            lm_texts=training_texts(datamodule) if "asr" in judges and not asr_checkpoint else None,
            asr_checkpoint=asr_checkpoint,
            speaker_model=speaker_model,
            language=model.text.language,
            device=str(model.device),
            notes=notes,
        )
        metrics = _judge(judging, rows, samples, prompts, references)
    for note in notes:
        log.info(note)
    return Samples(rows, metrics, notes)


def _judge(
    judging: EvalJudges, rows: list[dict], samples: list[Audio], prompts: list[Audio], references: list[Audio]
) -> dict[str, float]:
    """Every judge on the samples and, with ``ref_`` keys, on the references (their ceiling)."""
    texts = [r["text"] for r in rows]
    speakers = [r["speaker"] or r["source"] for r in rows]
    metrics = {}
    if "asr" in judging and not all(t.strip() for t in texts):
        judging.notes.append("WER/CER skipped: some held-out utterances have no text in the store")
    for key_prefix, clips, labels in (("", samples, None), ("ref_", references, [r["reference"] for r in rows])):
        judged = {"asr": {"texts": texts}} if all(t.strip() for t in texts) else {}
        judged |= {"speaker": {"references": prompts, "speakers": speakers}, "dnsmos": {}, "speech_fraction": {}}
        for name, inputs in judged.items():
            metrics.update(judging.run(name, clips, rows, "tts/", key_prefix=key_prefix, labels=labels, **inputs))
    return metrics
