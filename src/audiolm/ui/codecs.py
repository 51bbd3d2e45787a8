"""The codec tab: an uploaded clip through a codec at ``n_q`` levels, judged and tabled as ``preview.py`` does.

The codecs offered are the ``configs/codec/*.yaml`` options as configured (those needing weights load
them from a local folder or the local hub cache, or fail with the CLI's one-line message), and the
loaded run's own codec, fitted on its corpus. A codec that needs fitting (melvq) and comes from its
yaml has no corpus here: it is fitted on the uploaded clip itself, and the table says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from audiolm.codecs.base import AudioCodec
from audiolm.data.manifest import Utterance
from audiolm.errors import DataError
from audiolm.preview import levels_to_try, round_trip
from audiolm.preview_judging import PreviewJudges
from audiolm.preview_report import markdown_table

RUN_CODEC = "the loaded run's codec"
JUDGES = ["intrusive", "dnsmos"]  # an upload has no transcript, so no WER


def codec_configs() -> dict[str, Path]:
    """The codec options of ``configs/codec/``, by name."""
    from audiolm.cli.prepare_tts import config_dir

    return {p.stem: p for p in sorted((config_dir() / "codec").glob("*.yaml"))}


def build_codec(name: str) -> AudioCodec:
    """The codec of ``configs/codec/<name>.yaml``, as ``codec=<name>`` builds it."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    configs = codec_configs()
    if name not in configs:
        raise DataError(f"unknown codec {name!r}; choose one of {sorted(configs)} or {RUN_CODEC!r}")
    return instantiate(OmegaConf.load(configs[name]))


def fit_on_clip(codec: AudioCodec, wav: Any) -> str:
    """Fit ``codec`` on the clip itself (no corpus here) -> the note the table shows."""
    try:
        codec.fit([wav])
    except ValueError as err:
        raise DataError(
            f"{type(codec).__name__} is fitted on the clip itself here, and this one is too short to fit it "
            f"({err}); upload a longer clip, or load a run that uses it and choose {RUN_CODEC!r}"
        ) from None
    return (
        f"{type(codec).__name__} was fitted on this clip itself (no corpus here), which flatters its round trip; "
        f"{RUN_CODEC!r} was fitted on its training corpus"
    )


def codec_round_trip(
    codec: AudioCodec, clip_name: str, wav: Any, n_q: int, out: Path, device: str, judge: bool, notes: list[str]
) -> tuple[Path, str]:
    """Round-trip ``wav`` [1, T] (at the codec's rate) at ``n_q`` levels -> (the decoded WAV, the markdown table)."""
    levels, level_notes = levels_to_try(codec, [int(n_q)])
    seconds = wav.shape[-1] / codec.sample_rate
    judges = None
    if judge:
        judges = PreviewJudges.build(JUDGES, [Utterance(clip_name, seconds, id=clip_name)], [clip_name], seconds)
    report = round_trip(codec, [(clip_name, wav)], levels, out, device, judges)
    report["notes"] = notes + level_notes + (judges.notes if judges is not None else [])
    return out / "clip00" / f"nq{levels[0]}.wav", markdown_table(report)
