"""Captioning metrics: BLEU-1..4, ROUGE-L and CIDEr-D always; METEOR and SPICE where Java can run them.

The definitions are those of the MS-COCO caption evaluation code (``pycocoevalcap``), which
aac-metrics ports and the audio-captioning literature (DCASE, Clotho, AudioCaps, MusicCaps)
reports:

- **BLEU-n** is corpus-level: clipped n-gram matches summed over all clips, brevity penalty
  against the reference length closest to each candidate.
- **ROUGE-L** is the mean over clips of the LCS F-measure with beta = 1.2 (best reference
  precision and recall taken separately, as COCO does).
- **CIDEr-D** is the mean over clips of the tf-idf n-gram (1..4) cosine, with candidate counts
  clipped at the reference counts, a Gaussian length penalty (sigma = 6), idf taken over the
  evaluated references, times 10. COCO's length for the penalty counts bigrams, kept here.

One difference from aac-metrics' defaults: text is tokenised in Python (lower case, words and
numbers, punctuation dropped, ``'s``-style clitics kept on the word) rather than by the Java PTB
tokenizer, so the three core metrics need no Java and give the same figures on every machine.
For plain captions the two tokenisers agree except on clitics (PTB splits ``don't`` into
``do n't``). METEOR and SPICE run pycocoevalcap's jars on the same tokens when both Java and
pycocoevalcap are installed; otherwise they are skipped and a note says why.
"""

from __future__ import annotations

import math
import re
import shutil
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
N_GRAMS = 4
TINY, SMALL = 1e-15, 1e-9  # COCO's guards against 0/0 in BLEU


def tokenize(text: str) -> list[str]:
    """Lower-case words and numbers of ``text``; punctuation is dropped."""
    return WORD.findall(text.lower())


def _ngrams(words: Sequence[str], n: int = N_GRAMS) -> Counter:
    return Counter(tuple(words[i : i + k]) for k in range(1, n + 1) for i in range(len(words) - k + 1))


def bleu(candidates: list[list[str]], references: list[list[list[str]]], n: int = N_GRAMS) -> list[float]:
    """Corpus BLEU-1..n of tokenised ``candidates`` [C] against ``references`` [C][R]."""
    correct, guess = [0] * n, [0] * n
    test_len = ref_len = 0
    for cand, refs in zip(candidates, references, strict=True):
        counts, best = _ngrams(cand, n), Counter()
        for ref in refs:
            best |= _ngrams(ref, n)  # per n-gram, the largest count in any reference
        for gram, c in counts.items():
            correct[len(gram) - 1] += min(c, best[gram])
        for k in range(n):
            guess[k] += max(0, len(cand) - k)
        test_len += len(cand)
        ref_len += min((abs(len(r) - len(cand)), len(r)) for r in refs)[1]
    scores, product = [], 1.0
    for k in range(n):
        product *= (correct[k] + TINY) / (guess[k] + SMALL)
        scores.append(product ** (1.0 / (k + 1)))
    ratio = (test_len + TINY) / (ref_len + SMALL)
    penalty = math.exp(1 - 1 / ratio) if ratio < 1 else 1.0
    return [s * penalty for s in scores]


def _lcs(a: Sequence[str], b: Sequence[str]) -> int:
    prev = [0] * (len(b) + 1)
    for x in a:
        row = [0]
        for j, y in enumerate(b):
            row.append(prev[j] + 1 if x == y else max(prev[j + 1], row[j]))
        prev = row
    return prev[-1]


def rouge_l(candidates: list[list[str]], references: list[list[list[str]]], beta: float = 1.2) -> float:
    """Mean ROUGE-L F-measure; an empty sentence counts as one empty token, as in COCO."""
    scores = []
    for cand, refs in zip(candidates, references, strict=True):
        cand = cand or [""]
        lcs = [_lcs(r or [""], cand) for r in refs]
        prec = max(x / len(cand) for x in lcs)
        rec = max(x / len(r or [""]) for x, r in zip(lcs, refs, strict=True))
        scores.append((1 + beta**2) * prec * rec / (rec + beta**2 * prec) if prec and rec else 0.0)
    return float(np.mean(scores))


def cider_d(
    candidates: list[list[str]], references: list[list[list[str]]], n: int = N_GRAMS, sigma: float = 6.0
) -> float:
    """Mean CIDEr-D (x10) with idf over the references of this corpus."""
    doc_freq: Counter = Counter()
    ref_counts = [[_ngrams(r, n) for r in refs] for refs in references]
    for counts in ref_counts:
        doc_freq.update(set().union(*counts))
    log_docs = math.log(float(len(references)))

    def vector(counts: Counter) -> tuple[list[dict], list[float], int]:
        vec: list[dict] = [{} for _ in range(n)]
        for gram, tf in counts.items():
            vec[len(gram) - 1][gram] = tf * (log_docs - math.log(max(1.0, doc_freq[gram])))
        norms = [math.sqrt(sum(v * v for v in level.values())) for level in vec]
        length = sum(tf for gram, tf in counts.items() if len(gram) == 2)  # COCO's length: bigram count
        return vec, norms, length

    scores = []
    for cand, refs in zip(candidates, ref_counts, strict=True):
        vec, norm, length = vector(_ngrams(cand, n))
        total = np.zeros(n)
        for ref in refs:
            vec_r, norm_r, length_r = vector(ref)
            penalty = math.exp(-((length - length_r) ** 2) / (2 * sigma**2))
            for k in range(n):
                dot = sum(min(v, vec_r[k].get(g, 0.0)) * vec_r[k].get(g, 0.0) for g, v in vec[k].items())
                if norm[k] and norm_r[k]:
                    dot /= norm[k] * norm_r[k]
                total[k] += dot * penalty
        scores.append(float(np.mean(total)) / len(refs) * 10.0)
    return float(np.mean(scores))


# --- Java metrics ----------------------------------------------------------------------------
def _java_scorers() -> tuple[dict, list[str]]:
    """The pycocoevalcap scorers that can run here, and a note for each that cannot."""
    if shutil.which("java") is None:
        return {}, [
            "METEOR and SPICE skipped: they run on Java, and no `java` is on PATH (e.g. apt-get install "
            "default-jre-headless)"
        ]
    try:
        from pycocoevalcap.meteor.meteor import Meteor
        from pycocoevalcap.spice import spice as spice_module
    except ImportError:
        return {}, ["METEOR and SPICE skipped: they need the pycocoevalcap package (pip install pycocoevalcap==1.2)"]
    scorers, notes = {"meteor": Meteor}, []
    lib = Path(spice_module.__file__).parent / "lib"
    if list(lib.glob("stanford-corenlp-3.6.0*.jar")):
        scorers["spice"] = spice_module.Spice
    else:
        notes.append(
            f"SPICE skipped: it needs Stanford CoreNLP 3.6.0 (stanford-corenlp-3.6.0.jar and "
            f"stanford-corenlp-3.6.0-models.jar) in {lib}, which pycocoevalcap downloads on first use; "
            f"put them there by hand on an offline machine"
        )
    return scorers, notes


def _java_metrics(candidates: list[list[str]], references: list[list[list[str]]]) -> tuple[dict[str, float], list[str]]:
    scorers, notes = _java_scorers()
    res = {i: [" ".join(c)] for i, c in enumerate(candidates)}
    gts = {i: [" ".join(r) for r in refs] for i, refs in enumerate(references)}
    scores = {}
    for name, scorer_class in scorers.items():
        scorer = scorer_class()
        try:
            score, _ = scorer.compute_score(gts, res)
        except Exception as exc:  # noqa: BLE001 - a Java failure must not lose the other metrics
            # The METEOR wrapper holds its lock when the jar dies mid-answer; its __del__ would then hang.
            lock = getattr(scorer, "lock", None)
            if lock is not None and lock.locked():
                lock.release()
            notes.append(f"{name.upper()} skipped: the Java scorer failed ({type(exc).__name__}: {exc})")
            continue
        scores[name] = float(score)
    return scores, notes


def caption_metrics(
    predictions: list[str], references: list[list[str]], java: bool = True
) -> tuple[dict[str, float], list[str]]:
    """Scores of ``predictions`` [C] against ``references`` [C][R>=1], and notes on skipped metrics.

    Keys: ``bleu_1`` .. ``bleu_4``, ``rouge_l``, ``cider_d``, and ``meteor`` / ``spice`` when they ran.
    """
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} reference lists")
    if not predictions:
        return {}, ["no captions to score"]
    if any(not refs for refs in references):
        raise ValueError("every prediction needs at least one reference caption")
    cands = [tokenize(p) for p in predictions]
    refs = [[tokenize(r) for r in rs] for rs in references]
    scores = {f"bleu_{k + 1}": s for k, s in enumerate(bleu(cands, refs))}
    scores["rouge_l"] = rouge_l(cands, refs)
    scores["cider_d"] = cider_d(cands, refs)
    notes: list[str] = []
    if java:
        java_scores, notes = _java_metrics(cands, refs)
        scores.update(java_scores)
    else:
        notes.append("METEOR and SPICE skipped: turned off (eval.java_metrics=false)")
    return scores, notes
