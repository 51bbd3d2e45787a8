"""Text -> IPA phonemes with phonemizer's espeak-ng backend.

Errors speak to the user: an unknown language names close matches and how to list them all, an
empty text or one with nothing to pronounce (only symbols) says so instead of yielding silence.
"""

from __future__ import annotations

import difflib
import functools
import logging
import shutil

from audiolm.errors import ConfigError, DataError, MissingToolError

INSTALL_HINT = "pip install phonemizer==3.4.0 and sudo apt-get install -y espeak-ng"
_NOT_SPOKEN = set("ˈˌːˑ")  # stress and length marks alone pronounce nothing

# phonemizer logs "words count mismatch on N% of the lines" whenever espeak-ng joins an unstressed word
# to the next one, as connected speech does ("in the" -> "ɪnðə", "was the" -> "wʌzðə"): the phonemes
# are right and audiolm never relies on word counts, so only phonemizer's errors are shown.
_LOG = logging.getLogger("audiolm.phonemizer")
_LOG.setLevel(logging.ERROR)


@functools.cache
def supported_languages() -> dict[str, str]:
    """espeak-ng language codes -> names."""
    return dict(_backend_class().supported_languages())


def _backend_class():
    try:
        from phonemizer.backend import EspeakBackend
    except ImportError:
        raise MissingToolError(f"phonemizer is not installed; {INSTALL_HINT}") from None
    if shutil.which("espeak-ng") is None and shutil.which("espeak") is None:
        raise MissingToolError(f"espeak-ng was not found on PATH; {INSTALL_HINT}")
    return EspeakBackend


def check_language(language: str) -> None:
    languages = supported_languages()
    if language not in languages:
        close = difflib.get_close_matches(language, languages, n=5, cutoff=0.4)
        hint = f" Close matches: {', '.join(close)}." if close else ""
        raise ConfigError(
            f"language {language!r} is not supported by espeak-ng (text.language).{hint} "
            f"List all with `espeak-ng --voices` (first column), e.g. en-us, en-gb, fr-fr, de, es."
        )


def speakable(phonemes: str) -> bool:
    """True when a phoneme string holds at least one sound (not only punctuation, spaces, stress)."""
    return any(ch.isalpha() and ch not in _NOT_SPOKEN for ch in phonemes)


class Phonemizer:
    """espeak-ng through phonemizer, with stress marks and punctuation kept (pauses and intonation).

    Args:
        language: espeak-ng language code (``espeak-ng --voices``), e.g. ``en-us``.
    """

    def __init__(self, language: str = "en-us"):
        self.language = language
        check_language(language)
        self._backend = None

    def _get(self):
        if self._backend is None:
            self._backend = _backend_class()(
                self.language,
                preserve_punctuation=True,
                with_stress=True,
                language_switch="remove-flags",
                words_mismatch="ignore",
                logger=_LOG,
            )
        return self._backend

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_backend": None}  # the backend holds a C library handle

    def __call__(self, texts: list[str]) -> list[str]:
        """Texts -> phoneme strings, one per text; raises ``DataError`` for a text that is empty or has
        nothing to pronounce (see ``phonemize_or_none`` for batches that skip such texts)."""
        out = self.phonemize_or_none(texts)
        for text, phonemes in zip(texts, out, strict=True):
            if phonemes is None:
                raise DataError(_unspeakable(text, self.language))
        return out

    def phonemize_or_none(self, texts: list[str]) -> list[str | None]:
        """Texts -> phoneme strings, None where a text is empty, has no letter or digit, or yields no sound."""
        # Text without a letter or digit is only symbols; espeak-ng would read their names ("asterisk").
        keep = [i for i, t in enumerate(texts) if t and any(ch.isalnum() for ch in t)]
        # phonemizer drops empty results from its output list, so only non-empty texts go in, one each.
        phonemes = self._get().phonemize([texts[i].strip() for i in keep], strip=True) if keep else []
        out: list[str | None] = [None] * len(texts)
        for i, p in zip(keep, phonemes, strict=True):
            out[i] = " ".join(p.split()) if speakable(p) else None
        return out


def _unspeakable(text: str, language: str) -> str:
    if not text or not text.strip():
        return "the text is empty; give the words to speak"
    return (
        f"the text {text!r} has nothing to pronounce in {language} (no words, only symbols or punctuation); "
        f"give words, or check text.language"
    )
