"""build_judges: every judge from one call, one VAD shared, unknown names refused."""

from __future__ import annotations

import pytest

from audiolm.judges.suite import ALL, build_judges


def test_builds_every_judge_with_one_vad(known):
    judges = build_judges(lm_texts=known.lm_texts)
    assert list(judges) == list(ALL)
    assert judges["dnsmos"].vad is judges["speech_fraction"].vad
    assert judges["asr"].engine == "pocketsphinx"


def test_unknown_judge_names_are_refused():
    with pytest.raises(ValueError, match="unknown judge"):
        build_judges(["asr", "utmos"])
