"""Listen before training: round-trip a few corpus clips through a codec at several numbers of levels.

``python preview.py codec=dac data=folder data.root=/audio preview.n_q=[1,2,4,8,12]`` encodes each
clip once with the configured codec, decodes the first ``n`` levels for every ``n`` in
``preview.n_q``, and writes into ``preview.out_dir``:

- ``{clip}/original.wav`` and ``{clip}/nq{n}.wav``: what the codes keep, to listen to;
- ``preview.md`` / ``preview.json``: per ``n`` (mean over clips, and per clip in the JSON), with the
  bitrate each ``n`` costs:
  - SI-SDR and log-mel distance against the input; a codec that rebuilds the phase
    (``keeps_phase = False``: melvq's Griffin-Lim) gets no SI-SDR, which would only measure the phase;
  - the outside judges of ``preview.judges`` (see ``audiolm.preview_judging``): STOI and PESQ against
    the input, DNSMOS, and WER when the corpus has transcripts, with the originals' DNSMOS and WER
    beside them (the ``input`` row);
- ``preview.png``: one panel per metric against ``n``.

The seed advice this serves: pick the fewest levels that still sound right, since every level
costs the LM sequence length (flatten) or output heads (delay/parallel).
"""

from __future__ import annotations

import json
import logging
import math
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from audiolm.audio.io import save_audio
from audiolm.codecs.base import AudioCodec
from audiolm.data.manifest import Utterance, read_manifest
from audiolm.data.tokens.tokenize import fit_codec, load_utterance
from audiolm.errors import ConfigError, DataError
from audiolm.metrics.audio import log_mel_distance, si_sdr
from audiolm.preview_judging import PreviewJudges, judge_names
from audiolm.preview_report import markdown_table, plot

log = logging.getLogger(__name__)


def levels_to_try(codec: AudioCodec, requested: list[int]) -> tuple[list[int], list[str]]:
    """The requested level counts this codec can decode, and a note for each one it cannot."""
    name, q = type(codec).__name__, codec.n_codebooks
    if not codec.residual:
        return [q], [f"{name} is not residual: it decodes only all {q} levels"] if set(requested) != {q} else []
    keep = sorted({n for n in requested if 1 <= n <= q})
    notes = [
        f"n_q={n} skipped: {name} is configured with {q} levels "
        f"(give the codec more levels, e.g. codec.n_q, to preview more)"
        for n in sorted(set(requested) - set(keep))
    ]
    if not keep:
        raise ConfigError(f"preview.n_q={requested} holds no level count in [1, {q}] for {name}")
    return keep, notes


def pick_clips(
    rows: list[Utterance], root: Path, codec: AudioCodec, n_clips: int, seconds: float, seed: int
) -> list[tuple[str, torch.Tensor]]:
    """Up to ``n_clips`` seeded-random clips of at most ``seconds``: (id, wav [1, T] at the codec's rate).

    Clips are read and checked as tokenisation reads them; an unusable one is skipped with its reason.
    """
    order = sorted(rows, key=lambda r: r.id)
    random.Random(seed).shuffle(order)
    clips = []
    for utt in order:
        if len(clips) == n_clips:
            break
        wav, why = load_utterance(replace(utt, duration=min(utt.duration, seconds)), root, codec)
        if wav is None:
            log.warning("skipping %s: %s", utt.id, why)
            continue
        clips.append((utt.id, wav))
    if not clips:
        raise DataError(f"no readable clip in the corpus ({len(rows)} utterances) to preview")
    return clips


def bitrate_kbps(codec: AudioCodec, n: int) -> float:
    return n * math.log2(codec.codebook_size) * codec.frame_rate / 1000


@torch.inference_mode()
def decode_levels(
    codec: AudioCodec, clips: list[tuple[str, torch.Tensor]], levels: list[int], out: Path, device: str
) -> dict[int, list[torch.Tensor]]:
    """Encode each clip once, decode its first ``n`` levels for each ``n`` (``{n: [wav [1, T'] per clip]}``);
    write ``clipNN/original.wav`` and ``clipNN/nq{n}.wav``."""
    codec.to(device).eval()
    decoded: dict[int, list[torch.Tensor]] = {n: [] for n in levels}
    for i, (_, wav) in enumerate(clips):
        folder = out / f"clip{i:02d}"
        save_audio(folder / "original.wav", wav, codec.sample_rate)
        codes = codec.encode(wav[None].to(device))  # [1, Q, F]
        for n in levels:
            decoded[n].append(codec.decode(codes[:, :n]).float().cpu()[0])  # [1, T']
            save_audio(folder / f"nq{n}.wav", decoded[n][-1], codec.sample_rate)
    return decoded


def round_trip(
    codec: AudioCodec,
    clips: list[tuple[str, torch.Tensor]],
    levels: list[int],
    out: Path,
    device: str,
    judges: PreviewJudges | None = None,
) -> dict[str, Any]:
    """Round-trip ``clips`` at each level count, write the WAVs, return the metrics (and the judges')."""
    decoded = decode_levels(codec, clips, levels, out, device)
    per_clip: dict[str, dict[str, Any]] = {}
    for i, (utt_id, wav) in enumerate(clips):
        scores = {}
        for n in levels:
            scores[str(n)] = {"log_mel_distance": float(log_mel_distance(wav, decoded[n][i], codec.sample_rate)[0])}
            if codec.keeps_phase:
                scores[str(n)]["si_sdr_db"] = float(si_sdr(wav, decoded[n][i])[0])
        per_clip[f"clip{i:02d}"] = {"id": utt_id, "seconds": wav.shape[-1] / codec.sample_rate, "scores": scores}
    summary = {}
    for n in levels:
        values = [c["scores"][str(n)] for c in per_clip.values()]
        summary[str(n)] = {
            "kbps": bitrate_kbps(codec, n),
            **{k: sum(v[k] for v in values) / len(values) for k in values[0]},
        }
    report = {"codec": codec.config_dict(), "levels": levels, "summary": summary, "clips": per_clip}
    if judges is not None:
        judges.add_to(report, [wav for _, wav in clips], decoded, codec.sample_rate)
    return report


def preview(cfg: DictConfig) -> dict[str, Any]:
    """Build the configured codec and corpus, round-trip ``cfg.preview.clips`` clips, write the report."""
    settings = cfg.preview
    names = judge_names(settings.judges)  # checked before any slow work
    codec: AudioCodec = instantiate(cfg.codec)
    manifest = instantiate(cfg.data, codec=codec).corpus.manifest()
    rows = read_manifest(manifest)
    if codec.needs_fit:
        fit_codec(codec, rows, manifest.parent, settings.fit_max_seconds)
    levels, notes = levels_to_try(codec, list(settings.n_q))
    if not codec.keeps_phase:
        notes.append(
            f"no SI-SDR: {type(codec).__name__} rebuilds the phase (Griffin-Lim), so its waveform differs from "
            f"the input sample by sample however it sounds; compare the log-mel distance, and listen"
        )
    out = Path(settings.out_dir or cfg.paths.output_dir)
    clips = pick_clips(rows, manifest.parent, codec, settings.clips, settings.seconds, cfg.seed)
    judges = PreviewJudges.build(
        names,
        rows,
        [utt_id for utt_id, _ in clips],
        settings.seconds,
        settings.whisper_checkpoint,
        settings.device,
    )
    if judges is not None:
        notes += judges.notes
    report = round_trip(codec, clips, levels, out, settings.device, judges)
    report.update(notes=notes, manifest=str(manifest))
    out.mkdir(parents=True, exist_ok=True)
    (out / "preview.json").write_text(json.dumps(report, indent=2))
    (out / "preview.md").write_text(markdown_table(report))
    plot(report, out / "preview.png")
    print(markdown_table(report))
    print(f"WAVs, preview.md, preview.json and preview.png in {out}")
    return report
