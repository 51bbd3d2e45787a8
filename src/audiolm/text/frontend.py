"""The TTS text front-end: text -> phonemes -> ids, with its vocabulary.

One object serves data preparation (phonemise a corpus), training (phoneme strings -> ids) and
synthesis (user text -> ids, with clear errors for text that cannot be spoken). The language and
the vocabulary travel with checkpoints and exports through the run config.
"""

from __future__ import annotations

from audiolm.text.phonemize import Phonemizer
from audiolm.text.vocab import PhonemeVocab


class TextFrontend:
    """Args:
    language: espeak-ng language code, e.g. ``en-us`` (``espeak-ng --voices`` lists them).
    symbols: phoneme inventory, one character per symbol; None for the default IPA inventory.
    """

    def __init__(self, language: str = "en-us", symbols: str | None = None):
        self.language = language
        self.vocab = PhonemeVocab(symbols)
        self.phonemizer = Phonemizer(language)

    def phonemes(self, text: str) -> str:
        """One text -> its phoneme string; ``DataError`` when it is empty or has nothing to pronounce."""
        return self.phonemizer([text])[0]

    def ids(self, text: str) -> list[int]:
        """One text -> phoneme ids (for synthesis)."""
        return self.vocab.encode(self.phonemes(text))

    def __repr__(self) -> str:
        return f"TextFrontend(language={self.language!r}, symbols={len(self.vocab) - 1})"
