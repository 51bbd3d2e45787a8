"""Judged eval, shared by the audio tasks: the judges ``eval.judges`` names (``audiolm.judges``), run on
the written samples, with each clip's scores in its row of metrics.json and the means in the metrics.

    judging = EvalJudges(["asr", "speaker"], lm_texts=training_texts(datamodule), notes=notes)
    metrics |= judging.run("asr", clips, rows, prefix="tts/", texts=texts)            # tts/wer, rows' wer
    metrics |= judging.run("asr", refs, rows, prefix="tts/", key_prefix="ref_", texts=texts)  # tts/ref_wer

A mean that is NaN (e.g. ``sim_margin`` with one speaker only) is left out of the metrics, and a NaN
per-clip score is written as null, so metrics.json stays valid JSON; the judge's note says why.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Collection, Sequence

from audiolm.errors import ConfigError
from audiolm.judges.asr import ASRJudge, WhisperASR
from audiolm.judges.base import Judge, JudgeWarning
from audiolm.judges.suite import build_judges
from audiolm.metrics.tts import normalize_text
from audiolm.tasks.inference import Audio

# What eval.judges holds by default (the configs say the same), also for runs saved before it existed.
DEFAULT_JUDGES = ("asr", "speaker", "dnsmos", "speech_fraction")
# Per-clip only: the table keeps DNSMOS's overall and P.808 scores, the rows have all four.
ROW_ONLY = frozenset({"dnsmos_sig", "dnsmos_bak"})


def training_texts(datamodule) -> list[str] | None:
    """The ASR judge's domain-LM texts: the training split's texts, less any that a held-out utterance
    also says (an LM that has seen the answer flatters any audio). None when the store has no texts."""
    entries = datamodule.store.entries
    held_out = {normalize_text(entries[i].get("text") or "") for i in datamodule.val_indices}
    texts = [t for i in datamodule.train_indices if (t := entries[i].get("text") or "")]
    kept = [t for t in texts if normalize_text(t) not in held_out]
    return kept or None


def spread_over_speakers(speakers: Sequence[str | None], n: int) -> list[int]:
    """``n`` positions of ``speakers``, taking one of each speaker in turn (in order of first appearance),
    so a batch of samples has other speakers to compare against. Unknown speakers count as distinct."""
    queues: dict[object, list[int]] = {}
    for k, speaker in enumerate(speakers):
        queues.setdefault(speaker if speaker is not None else ("?", k), []).append(k)
    picked: list[int] = []
    while len(picked) < min(n, len(speakers)):
        for queue in queues.values():
            if queue and len(picked) < n:
                picked.append(queue.pop(0))
    return picked


class EvalJudges:
    """The judges of ``eval.judges``, built once, and where their notes go.

    Args:
        names: judge names from ``eval.judges`` (any of ``DEFAULT_JUDGES``); empty turns judging off.
        lm_texts: the ASR judge's domain-LM texts (``training_texts``); None: pocketsphinx's general LM.
        asr_checkpoint: ``eval.asr_checkpoint``, an openai-whisper ``.pt`` (preferred over pocketsphinx).
        speaker_model: ``eval.speaker_model``, a transformers x-vector folder (preferred over resemblyzer).
        language: the spoken language (espeak code such as ``en-us``); pocketsphinx hears English only.
        device: where the judges' models run.
        notes: the eval notes; skipped judges and clips that could not be judged are appended.
    """

    def __init__(
        self,
        names: Sequence[str],
        lm_texts: Sequence[str] | None = None,
        asr_checkpoint: str | None = None,
        speaker_model: str | None = None,
        language: str = "en",
        device: str = "cpu",
        notes: list[str] | None = None,
    ):
        names = [names] if isinstance(names, str) else list(names or [])  # eval.judges=asr: one name
        unknown = sorted(set(names) - set(DEFAULT_JUDGES))
        if unknown:
            raise ConfigError(
                f"eval.judges: unknown judge(s) {unknown} for samples (intrusive is for codec round trips); "
                f"choose from {list(DEFAULT_JUDGES)}, e.g. eval.judges=[{','.join(DEFAULT_JUDGES)}], "
                f"or eval.judges=[] for none"
            )
        self.notes = notes if notes is not None else []
        if not names:
            self.notes.append(
                "judging off (eval.judges is empty): no WER, speaker or DNSMOS scores; "
                f"set eval.judges to some of {', '.join(DEFAULT_JUDGES)} to score the samples"
            )
        language = language.split("-")[0]
        if "asr" in names and not asr_checkpoint and language != "en":
            names.remove("asr")
            self.notes.append(
                f"ASR skipped: pocketsphinx hears English only and this model speaks {language!r}; "
                f"set eval.asr_checkpoint=/path/to/whisper.pt to score it"
            )
        others = build_judges([n for n in names if n != "asr"], xvector_path=speaker_model, device=device)
        self.judges: dict[str, Judge] = {}
        for name in names:
            self.judges[name] = others[name] if name != "asr" else self._asr(lm_texts, asr_checkpoint, language, device)

    @staticmethod
    def _asr(lm_texts, checkpoint: str | None, language: str, device: str) -> ASRJudge:
        if checkpoint:  # built here rather than by build_judges, to give Whisper the language and config key
            return ASRJudge(WhisperASR(checkpoint, language, device, config_key="eval.asr_checkpoint"), "whisper")
        return ASRJudge.build(lm_texts)

    def __contains__(self, name: str) -> bool:
        return name in self.judges

    def run(
        self,
        name: str,
        clips: Sequence[Audio],
        rows: Sequence[dict],
        prefix: str,
        key_prefix: str = "",
        labels: Sequence[str] | None = None,
        keep: Collection[str] | None = None,
        **inputs,
    ) -> dict[str, float]:
        """Score ``clips`` (one per row) with judge ``name``; ``inputs`` are its ``texts``/``references``/
        ``speakers``. Each row gets ``{key_prefix}{score}`` (and the judge's texts, e.g. ``transcript``);
        the means come back as ``{prefix}{key_prefix}{score}``. ``keep``: only these scores/texts (all: None).
        The judge's notes name clip i ``labels[i]`` (default: its row's ``file``) and its reference its
        row's ``prompt``."""
        if name not in self.judges or not clips:
            return {}
        with warnings.catch_warnings():  # each one is also a note, which eval prints
            warnings.simplefilter("ignore", JudgeWarning)
            scores = self.judges[name].score(clips, **inputs)
        for values in (scores.per_clip, scores.texts):
            for key, per_clip in values.items():
                if keep is not None and key not in keep:
                    continue
                for row, value in zip(rows, per_clip, strict=True):
                    row[f"{key_prefix}{key}"] = None if isinstance(value, float) and math.isnan(value) else value
        names = {"clip": labels or [r["file"] for r in rows], "reference": [str(r.get("prompt")) for r in rows]}
        for note in scores.notes:
            note = re.sub(r"^(clip|reference) (\d+)", lambda m: names[m[1]][int(m[2])], note)
            self.notes.append(f"{name} judge: {note}")
        return {
            f"{prefix}{key_prefix}{k}": v
            for k, v in scores.mean.items()
            if k not in ROW_ONLY and math.isfinite(v) and (keep is None or k in keep)
        }
