"""STOI/PESQ judge: a clip against itself scores the maximum; a noisy copy scores lower."""

from __future__ import annotations

import pytest

from audiolm.judges.base import JudgeWarning
from audiolm.judges.intrusive import PESQ_FLOOR, IntrusiveJudge


@pytest.fixture(scope="module")
def judge():
    return IntrusiveJudge()


def test_identity_is_best_and_noise_is_worse(judge, known, say):
    clean = say(known.held_out[0])
    scores = judge.score([clean, known.add_noise(clean, 0.05), known.add_noise(clean, 0.3)], references=[clean] * 3)
    stoi, pesq = scores.per_clip["stoi"], scores.per_clip["pesq"]
    # Measured: identity stoi 1.00, pesq 4.64; noise std 0.3: stoi 0.60, pesq 1.02.
    assert stoi[0] > 0.99 and pesq[0] > 4.5
    assert stoi[0] > stoi[1] > stoi[2] and pesq[0] > pesq[1] > pesq[2]


def test_references_are_required(judge, known, say):
    with pytest.raises(ValueError, match="needs references"):
        judge.score([say(known.held_out[0])])


def test_broken_clips_get_the_floor(judge, known, say):
    broken = [c for c, _ in known.broken()]
    with pytest.warns(JudgeWarning, match="clip 2: too short"):
        scores = judge.score(broken, references=[say(known.held_out[0])] * len(broken))
    assert scores.per_clip["stoi"] == [0.0] * 4 and scores.per_clip["pesq"] == [PESQ_FLOOR] * 4
