"""DNSMOS judge: clean espeak speech outscores the same speech in loud noise; silence and noise are gated."""

from __future__ import annotations

import pytest

from audiolm.judges.base import JudgeWarning
from audiolm.judges.dnsmos import DNSMOSJudge


@pytest.fixture(scope="module")
def judge():
    return DNSMOSJudge()


def test_clean_beats_noisy_and_no_speech_is_gated(judge, known, say):
    clean = say(known.held_out[0])
    clips = [clean, known.add_noise(clean, 0.3), known.silence(), known.white_noise()]
    with pytest.warns(JudgeWarning) as record:
        scores = judge.score(clips)
    ovrl = scores.per_clip["dnsmos_ovrl"]
    # Measured: clean 2.50, noisy 1.07 (OVRL); silence and noise have no speech and get 1.0.
    assert ovrl[0] > ovrl[1] + 0.5
    assert ovrl[2:] == [1.0, 1.0] and scores.per_clip["dnsmos_p808"][2:] == [1.0, 1.0]
    messages = " | ".join(str(w.message) for w in record)
    assert "clip 2: silent" in messages and "clip 3: no speech" in messages


def test_broken_clips_never_reach_speechmos(judge, known):
    broken = known.broken()  # an empty clip would loop forever inside speechmos
    with pytest.warns(JudgeWarning, match="clip 0: empty"):
        scores = judge.score([c for c, _ in broken])
    assert scores.mean["dnsmos_ovrl"] == 1.0
