"""ASR judge: pocketsphinx with a domain LM transcribes held-out espeak sentences, and not noise."""

from __future__ import annotations

import pytest

from audiolm.judges.asr import ASRJudge
from audiolm.judges.base import JudgeWarning
from audiolm.judges.sphinx import domain_sentences

# Measured: WER 0.09, CER 0.05 on the 6 held-out sentences in the us_female voice (22.05 kHz input).
WER_BOUND = 0.3


@pytest.fixture(scope="module")
def judge(known):
    return ASRJudge.build(lm_texts=known.lm_texts)


def test_espeak_sentences_are_transcribed(judge, known, say):
    scores = judge.score([say(t) for t in known.held_out], texts=known.held_out)
    assert judge.engine == "pocketsphinx"
    assert scores.mean["wer"] < WER_BOUND, scores.texts["transcript"]
    assert len(scores.per_clip["wer"]) == len(known.held_out)
    assert all(scores.texts["transcript"])


def test_noise_scores_far_worse(judge, known, say):
    texts = known.held_out[:3]
    clean = judge.score([say(t) for t in texts], texts=texts).mean["wer"]
    noise = judge.score([known.white_noise(seed=i) for i in range(3)], texts=texts).mean["wer"]
    assert noise > 0.9 and noise > clean + 0.5


def test_broken_clips_count_as_all_words_lost(judge, known):
    broken = known.broken()
    with pytest.warns(JudgeWarning, match="clip 0: empty"):
        scores = judge.score([c for c, _ in broken], texts=known.held_out[: len(broken)])
    assert scores.per_clip["wer"] == [1.0] * len(broken)
    assert scores.mean == {"wer": 1.0, "cer": 1.0}
    assert scores.texts["transcript"] == [""] * len(broken)


def test_lm_texts_must_be_given_and_usable(known):
    with pytest.raises(TypeError):
        ASRJudge.build()  # the caller always decides what the LM saw
    with pytest.raises(ValueError, match="hold no word of the CMU dictionary"):
        ASRJudge.build(lm_texts=["zzqx qxzz"])
    with pytest.raises(ValueError, match="empty after normalisation"):
        ASRJudge(lambda wav: "", "none").score([known.silence()], texts=["?!"])


def test_out_of_dictionary_words_split_the_lm_sentence():
    lines, oov = domain_sentences(["The zzqx cat sat."], {"the": 1, "cat": 1, "sat": 1})
    assert lines == ["the", "cat sat"] and oov == ["zzqx"]
