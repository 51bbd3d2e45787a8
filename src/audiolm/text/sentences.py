"""Split long text into sentences, so a TTS model synthesises pieces of the length it was trained on."""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"(?<=[.!?;…])\s+|\n+")
_CLAUSE_END = re.compile(r"(?<=[,:])\s+")


def split_sentences(text: str, max_chars: int = 200) -> list[str]:
    """Sentences of ``text`` (split after . ! ? ; … and at line breaks), each at most ``max_chars``
    long: a longer sentence is split at commas, then between words."""
    pieces = []
    for sentence in _SENTENCE_END.split(text.strip()):
        sentence = " ".join(sentence.split())
        if sentence:
            pieces += _fit(sentence, max_chars)
    return pieces


def _fit(sentence: str, max_chars: int) -> list[str]:
    if len(sentence) <= max_chars:
        return [sentence]
    parts: list[str] = []
    for clause in _CLAUSE_END.split(sentence):
        parts += [clause] if len(clause) <= max_chars else clause.split()
    return _merge(parts, max_chars)


def _merge(parts: list[str], max_chars: int) -> list[str]:
    """Join consecutive parts while they fit, so commas only split where they must."""
    merged: list[str] = []
    for part in parts:
        if merged and len(merged[-1]) + 1 + len(part) <= max_chars:
            merged[-1] += " " + part
        else:
            merged.append(part)
    return merged
