"""Outside judges for the codec preview: STOI/PESQ, DNSMOS and WER of every round trip, per ``n_q``.

- ``intrusive``: STOI and PESQ of each round trip against the clip given to the codec;
- ``dnsmos``: DNSMOS (OVRL, SIG, BAK, P.808) of the round trips, and of the originals beside them;
- ``asr``: WER/CER of the round trips against the manifest's ``text``, and of the originals beside
  them (the ceiling: the same ASR on the uncoded clips). pocketsphinx's domain LM is built from the
  texts of the corpus rows that are *not* previewed (never a previewed clip's own sentence, which
  would flatter any audio); ``whisper_checkpoint`` replaces pocketsphinx when given.

A clip cut to ``preview.seconds`` no longer says its whole transcript, so it gets no WER (with a note).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from audiolm.data.manifest import Utterance
from audiolm.errors import ConfigError
from audiolm.judges.base import Judge
from audiolm.metrics.tts import normalize_text
from audiolm.tasks.inference import Audio

CHOICES = ("intrusive", "dnsmos", "asr")
SCORES_OF = {
    "intrusive": ("stoi", "pesq"),
    "dnsmos": ("dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808"),
    "asr": ("wer", "cer"),
}
ON_INPUT = ("dnsmos", "asr")  # judges that also score the originals (STOI/PESQ of a clip against itself is 1/4.64)


def judge_names(value: Any) -> list[str]:
    """``preview.judges`` as a checked list of names."""
    if value is None or isinstance(value, str):
        raise ConfigError(
            f"preview.judges={value!r} must be a list, e.g. preview.judges=[intrusive,dnsmos,asr]; "
            f"preview.judges=[] turns the judges off"
        )
    names = [str(n) for n in value]
    unknown = sorted(set(names) - set(CHOICES))
    if unknown:
        raise ConfigError(
            f"preview.judges holds unknown judge(s) {unknown}; choose from {list(CHOICES)} (or [] for none)"
        )
    return list(dict.fromkeys(names))


def transcripts(
    rows: Sequence[Utterance], picked: Sequence[str], seconds: float
) -> tuple[list[str | None], list[str], list[str]]:
    """For the previewed clips ``picked`` (row ids): the text each one says (None: no WER for it), the
    LM texts (every other row's text, minus any sentence a previewed clip says), and notes."""
    by_id = {r.id: r for r in rows}
    texts: list[str | None] = []
    notes: list[str] = []
    for i, utt_id in enumerate(picked):
        row = by_id[utt_id]
        if not normalize_text(row.text):
            texts.append(None)
        elif row.duration > seconds + 1e-3:
            texts.append(None)
            notes.append(
                f"clip{i:02d} ({utt_id}) is cut to {seconds:g} s of its {row.duration:.1f} s, so it no longer says "
                f"its transcript: no WER for it (raise preview.seconds to score it)"
            )
        else:
            texts.append(row.text)
    said = {normalize_text(t) for t in texts if t}
    lm_texts = [r.text for r in rows if r.id not in set(picked) and normalize_text(r.text) not in said | {""}]
    return texts, lm_texts, notes


@dataclass
class PreviewJudges:
    """The judges a preview runs, and what the ASR judge needs: ``texts[i]`` for previewed clip ``i``
    (None: no WER for it)."""

    judges: dict[str, Judge]
    texts: list[str | None]
    notes: list[str] = field(default_factory=list)

    @classmethod
    def build(
        cls,
        names: Sequence[str],
        rows: Sequence[Utterance],
        picked: Sequence[str],
        seconds: float,
        whisper_checkpoint: str | None = None,
        device: str = "cpu",
    ) -> PreviewJudges | None:
        """The judges in ``names`` for the previewed rows ``picked``; None when ``names`` is empty."""
        names = list(names)
        if not names:
            return None
        texts, lm_texts, notes = transcripts(rows, picked, seconds)
        if "asr" in names and not any(texts):
            names.remove("asr")
            if not notes:
                notes.append(
                    "no WER: the previewed clips have no transcript (the manifest's `text`; for data=folder, a "
                    ".txt or .lab file beside each audio file); drop asr from preview.judges to silence this"
                )
        elif "asr" in names:
            notes += _asr_notes(texts, lm_texts, whisper_checkpoint)
        from audiolm.judges.suite import build_judges

        try:
            judges = build_judges(
                names, lm_texts=lm_texts or None, whisper_checkpoint=whisper_checkpoint, device=device
            )
        except ImportError as err:
            raise ConfigError(
                f"preview.judges={names}: a judge needs the package {err.name!r}, which is not installed; install the "
                f"locked environment (`make install`), or leave that judge out of preview.judges ([] for none)"
            ) from err
        return cls(judges, texts, notes)

    def add_to(self, report: dict[str, Any], clips: Sequence[torch.Tensor], decoded: dict[int, list], rate: int):
        """Score the originals ``clips`` (each [1, T]) and the round trips ``decoded[n]``; write the scores
        into ``report``: ``summary[n]`` and each clip's ``scores[n]`` (with its ASR transcript), the
        originals' under ``input`` (``report["input"]`` and each clip's ``input``), notes under ``judge_notes``."""
        names = list(report["clips"])
        originals = [Audio(w.float().cpu(), rate) for w in clips]
        report["input"] = {}
        report.setdefault("judge_notes", [])
        for clip in report["clips"].values():
            clip["input"] = {}
        targets = {"input": originals, **{str(n): [Audio(w, rate) for w in wavs] for n, wavs in decoded.items()}}
        for key, audio in targets.items():
            for judge_name, judge in self.judges.items():
                if key == "input" and judge_name not in ON_INPUT:
                    continue
                means, per_clip, notes = self._run(judge_name, judge, audio, originals)
                report["judge_notes"] += [f"{'input' if key == 'input' else 'n_q=' + key}, {n}" for n in notes]
                (report["input"] if key == "input" else report["summary"][key]).update(means)
                for i, scores in per_clip.items():
                    clip = report["clips"][names[i]]
                    (clip["input"] if key == "input" else clip["scores"][key]).update(scores)

    def _run(
        self, name: str, judge: Judge, audio: list[Audio], originals: list[Audio]
    ) -> tuple[dict[str, float], dict[int, dict[str, Any]], list[str]]:
        """One judge on one set of clips: (means, scores by clip index, notes naming clip folders)."""
        keep = [i for i, t in enumerate(self.texts) if t] if name == "asr" else list(range(len(audio)))
        kwargs: dict[str, Any] = {}
        if name == "asr":
            kwargs["texts"] = [self.texts[i] for i in keep]
        if name == "intrusive":
            kwargs["references"] = [originals[i] for i in keep]
        scores = judge.score([audio[i] for i in keep], **kwargs)
        per_clip = {
            i: {k: scores.per_clip[k][j] for k in SCORES_OF[name] if k in scores.per_clip} for j, i in enumerate(keep)
        }
        for j, i in enumerate(keep):
            per_clip[i].update({k: v[j] for k, v in scores.texts.items()})
        means = {k: scores.mean[k] for k in SCORES_OF[name] if k in scores.mean}
        notes = [f"{name}: {_folder_names(n, keep)}" for n in scores.notes]
        return means, per_clip, notes


def _asr_notes(texts: list[str | None], lm_texts: list[str], whisper_checkpoint: str | None) -> list[str]:
    """What a reader needs to weigh the WER: how many words it counts, and what the LM saw."""
    said = [normalize_text(t).split() for t in texts if t]
    notes = [f"WER over {sum(map(len, said))} words of {len(said)} clip(s): few words make a noisy WER"]
    if whisper_checkpoint:
        return notes
    if lm_texts:
        notes.append(
            f"WER: pocketsphinx with a domain LM from the {len(lm_texts)} corpus text(s) not previewed; "
            f"the input row is its ceiling (a domain LM flatters garbled audio too)"
        )
    else:
        notes.append(
            "WER: pocketsphinx with its general English LM (every corpus text is previewed, and the LM "
            "never sees the sentences it scores): expect a high WER, and compare with the input row"
        )
    return notes


def _folder_names(note: str, keep: list[int]) -> str:
    """A judge's note with its batch index as the clip's folder: ``clip 1`` -> ``clip03``."""
    return re.sub(
        r"\b(clip|reference) (\d+)",
        lambda m: f"clip{keep[int(m[2])]:02d}" + ("/original.wav" if m[1] == "reference" else ""),
        note,
    )
