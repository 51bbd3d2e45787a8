"""pocketsphinx English ASR (acoustic model and CMU dict ship in its wheel) with a domain n-gram LM.

The LM is built by ``pocketsphinx.lm.ArpaBoLM`` from texts the caller names: the training split's
texts, never the held-out ones a judge scores (an LM that has seen the answer flatters any audio).
pocketsphinx's general English LM (``lm_texts=None``) is far worse on synthetic voices (WER ~0.86
on espeak clips). A domain LM also flatters garbled audio, so report the reference clips' WER
through the same judge beside a model's.

Out-of-vocabulary words: the decoder's dictionary is the CMU dict restricted to the LM's words. A
word of the LM texts that the CMU dict lacks is left out (the sentence is split there, so no false
n-gram joins its neighbours) and listed in ``oov``; such words can never be recognised and count as
errors. No g2p is attempted: espeak's phonemes do not map cleanly onto the acoustic model's ARPAbet.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from audiolm.metrics.tts import normalize_text


def _cmudict(path: Path) -> dict[str, list[str]]:
    """word -> its dictionary lines (alternates ``word(2)`` included)."""
    entries: dict[str, list[str]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            head = line.split(maxsplit=1)[0] if line.strip() else ""
            if head:
                entries.setdefault(head.split("(")[0], []).append(line.rstrip("\n"))
    return entries


def domain_sentences(texts: Sequence[str], vocabulary: dict) -> tuple[list[str], list[str]]:
    """LM training lines from ``texts`` (normalised, split at out-of-dictionary words) and those words."""
    lines, oov = [], set()
    for text in texts:
        run: list[str] = []
        for word in normalize_text(text).split():
            if word in vocabulary:
                run.append(word)
                continue
            oov.add(word)
            if run:
                lines.append(" ".join(run))
            run = []
        if run:
            lines.append(" ".join(run))
    return lines, sorted(oov)


class SphinxTranscriber:
    """float32 [T] at 16 kHz -> a lower-case transcript.

    Args:
        lm_texts: sentences to build the domain LM from (the training split's texts); None uses the
            wheel's general English LM. Required, so that a caller always decides what the LM saw.
    """

    sample_rate = 16000

    def __init__(self, lm_texts: Sequence[str] | None):
        from pocketsphinx import Decoder, get_model_path

        self.oov: list[str] = []
        model = Path(get_model_path("en-us"))
        if lm_texts is None:
            self.decoder = Decoder(hmm=str(model / "en-us"), samprate=self.sample_rate, loglevel="FATAL")
            return
        with tempfile.TemporaryDirectory(prefix="audiolm-sphinx-") as tmp:
            lm_path, dict_path = self._write_lm(lm_texts, model / "cmudict-en-us.dict", Path(tmp))
            self.decoder = Decoder(
                hmm=str(model / "en-us"),
                lm=str(lm_path),
                dict=str(dict_path),
                samprate=self.sample_rate,
                loglevel="FATAL",
            )

    def _write_lm(self, texts: Sequence[str], cmudict: Path, tmp: Path) -> tuple[Path, Path]:
        from pocketsphinx.lm import ArpaBoLM

        entries = _cmudict(cmudict)
        lines, self.oov = domain_sentences(texts, entries)
        if not lines:
            raise ValueError(
                f"the ASR judge's LM texts hold no word of the CMU dictionary ({len(texts)} texts given); "
                f"pass the training split's sentences as lm_texts, or lm_texts=None for the general LM"
            )
        if self.oov:
            warnings.warn(
                f"ASR judge: {len(self.oov)} LM word(s) missing from the CMU dict are left out and can never be "
                f"recognised: {', '.join(self.oov[:20])}{' ...' if len(self.oov) > 20 else ''}",
                stacklevel=3,
            )
        lm = ArpaBoLM(text="\n".join(lines), add_start=True, case="lower")
        lm.compute()
        lm.write_file(str(tmp / "domain.arpa"))
        words = sorted({w for line in lines for w in line.split()})
        (tmp / "domain.dict").write_text("".join(e + "\n" for w in words for e in entries[w]), encoding="utf-8")
        return tmp / "domain.arpa", tmp / "domain.dict"

    def __call__(self, wav: np.ndarray) -> str:
        pcm = (np.clip(wav, -1.0, 1.0) * 32767).astype(np.int16).tobytes()
        self.decoder.start_utt()
        self.decoder.process_raw(pcm, full_utt=True)
        self.decoder.end_utt()
        hyp = self.decoder.hyp()
        return hyp.hypstr if hyp is not None else ""
