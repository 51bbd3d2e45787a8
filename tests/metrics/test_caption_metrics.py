"""Caption metrics against the MS-COCO reference implementation (pycocoevalcap) and by hand."""

from __future__ import annotations

import shutil

import pytest

from audiolm.metrics.caption import bleu, caption_metrics, cider_d, rouge_l, tokenize

PREDICTIONS = [
    "a loud square wave tone pulsing quickly",
    "a man speaks slowly in a low voice",
    "",
    "soft white noise hissing steadily",
    "a woman speaking",
]
REFERENCES = [
    ["A loud, high square-wave tone pulsing quickly.", "A square tone beeps fast and loud."],
    ["A man speaking slowly in a low voice."],
    ["Quiet pink noise."],
    ["Soft white noise hissing steadily.", "Steady hiss of quiet white noise."],
    ["A woman speaking quickly in a high voice.", "A woman talks fast."],
]


def _tokenised():
    cands = [tokenize(p) for p in PREDICTIONS]
    refs = [[tokenize(r) for r in rs] for rs in REFERENCES]
    return cands, refs


def test_tokenize_drops_punctuation_and_case():
    assert tokenize("A loud, HIGH square-wave tone... (it's 440 Hz)!") == [
        "a",
        "loud",
        "high",
        "square",
        "wave",
        "tone",
        "it's",
        "440",
        "hz",
    ]


def test_perfect_and_disjoint_captions():
    refs = [["the cat sat on the mat"], ["a dog barks loudly at night"]]
    perfect, _ = caption_metrics(["The cat sat on the mat.", "A dog barks loudly at night"], refs, java=False)
    assert perfect["bleu_4"] == pytest.approx(1.0) and perfect["rouge_l"] == pytest.approx(1.0)
    wrong, _ = caption_metrics(["xyz qqq", "zzz www"], refs, java=False)
    assert wrong["bleu_1"] < 1e-6 and wrong["rouge_l"] == 0 and wrong["cider_d"] == 0


def test_matches_pycocoevalcap():
    coco = pytest.importorskip("pycocoevalcap")
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    assert coco is not None
    cands, refs = _tokenised()
    res = {i: [" ".join(c)] for i, c in enumerate(cands)}
    gts = {i: [" ".join(r) for r in rs] for i, rs in enumerate(refs)}
    expected_bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    assert bleu(cands, refs) == pytest.approx(expected_bleu, rel=1e-9)
    assert rouge_l(cands, refs) == pytest.approx(Rouge().compute_score(gts, res)[0], rel=1e-9)
    assert cider_d(cands, refs) == pytest.approx(Cider().compute_score(gts, res)[0], rel=1e-9)


def test_java_metrics_run_or_are_skipped_with_a_note():
    scores, notes = caption_metrics(PREDICTIONS, REFERENCES, java=True)
    assert {"bleu_1", "bleu_4", "rouge_l", "cider_d"} <= scores.keys()
    if shutil.which("java") is None:
        assert "meteor" not in scores and any("METEOR" in n for n in notes)
    assert ("spice" in scores) or any("SPICE" in n for n in notes)
    if "meteor" in scores:
        assert 0 < scores["meteor"] < 1


def test_bad_arguments():
    with pytest.raises(ValueError, match="reference lists"):
        caption_metrics(["a"], [])
    with pytest.raises(ValueError, match="at least one reference"):
        caption_metrics(["a"], [[]])
