"""The phoneme vocabulary: one id per symbol of the phonemizer's IPA output.

The default inventory covers every symbol espeak-ng writes in any of its languages (IPA letters,
modifier letters, combining diacritics, the Latin and Greek letters IPA borrows, digits, spaces
and punctuation), so a model's embedding table is sized before any data is read and a vocabulary
never depends on the corpus. It travels with every checkpoint and export (``to_json``).
"""

from __future__ import annotations

import json
import logging

log = logging.getLogger(__name__)

UNK = "<unk>"
_RANGES = [(0x0250, 0x02AF), (0x02B0, 0x02FF), (0x0300, 0x036F)]  # IPA extensions, modifier letters, diacritics
_EXTRA = "æçðøħŋœɶθβχɸʁᵻ" + "abcdefghijklmnopqrstuvwxyz" + "ABCDEFGHIJKLMNOPQRSTUVWXYZ" + "0123456789"
_PUNCTUATION = " !'(),-.:;?\"¡¿…"


def default_symbols() -> str:
    chars = [chr(c) for lo, hi in _RANGES for c in range(lo, hi + 1)]
    seen: dict[str, None] = dict.fromkeys(_PUNCTUATION + _EXTRA + "".join(chars))
    return "".join(seen)


class PhonemeVocab:
    """Symbols -> ids; id 0 is ``<unk>`` for symbols outside the inventory.

    Args:
        symbols: the inventory, one character per symbol; None for the default IPA inventory.
    """

    def __init__(self, symbols: str | None = None):
        symbols = default_symbols() if symbols is None else symbols
        if len(set(symbols)) != len(symbols):
            raise ValueError("phoneme symbols must be distinct characters")
        self.symbols = symbols
        self._ids = {s: i + 1 for i, s in enumerate(symbols)}

    def __len__(self) -> int:
        return len(self.symbols) + 1

    def encode(self, phonemes: str) -> list[int]:
        """A phoneme string -> ids; unknown symbols become ``<unk>`` (0), with a warning naming them."""
        ids = [self._ids.get(ch, 0) for ch in phonemes]
        if 0 in ids:
            unknown = sorted({ch for ch in phonemes if ch not in self._ids})
            log.warning("phoneme symbol(s) %s are not in the vocabulary; encoded as %s", unknown, UNK)
        return ids

    def decode(self, ids: list[int]) -> str:
        return "".join(self.symbols[i - 1] if i > 0 else "\ufffd" for i in ids)

    def to_json(self) -> str:
        return json.dumps({"symbols": self.symbols}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> PhonemeVocab:
        return cls(json.loads(text)["symbols"])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PhonemeVocab) and other.symbols == self.symbols
