"""All judges at once, sharing one VAD: what eval and the sample callback build."""

from __future__ import annotations

from collections.abc import Sequence

from audiolm.judges.asr import ASRJudge
from audiolm.judges.base import Judge
from audiolm.judges.dnsmos import DNSMOSJudge
from audiolm.judges.intrusive import IntrusiveJudge
from audiolm.judges.speaker import SpeakerJudge
from audiolm.judges.vad import SileroVad, SpeechFractionJudge

ALL = ("asr", "speaker", "dnsmos", "speech_fraction", "intrusive")


def build_judges(
    names: Sequence[str] = ALL,
    lm_texts: Sequence[str] | None = None,
    whisper_checkpoint: str | None = None,
    xvector_path: str | None = None,
    device: str = "cpu",
) -> dict[str, Judge]:
    """The judges named in ``names`` (any of ``ALL``), keyed by name.

    Args:
        lm_texts: the ASR judge's domain LM texts: the training split's texts, never the held-out ones
            (None: pocketsphinx's general LM). Ignored when ``whisper_checkpoint`` is given.
        whisper_checkpoint: an openai-whisper ``.pt``; preferred over pocketsphinx when given.
        xvector_path: a transformers x-vector folder; preferred over resemblyzer when given.
    """
    unknown = sorted(set(names) - set(ALL))
    if unknown:
        raise ValueError(f"unknown judge(s) {unknown}; choose from {list(ALL)}")
    vad = SileroVad() if {"dnsmos", "speech_fraction"} & set(names) else None
    makers = {
        "asr": lambda: ASRJudge.build(lm_texts, whisper_checkpoint, device),
        "speaker": lambda: SpeakerJudge(xvector_path, device),
        "dnsmos": lambda: DNSMOSJudge(vad=vad),
        "speech_fraction": lambda: SpeechFractionJudge(vad=vad),
        "intrusive": IntrusiveJudge,
    }
    return {name: makers[name]() for name in names}
