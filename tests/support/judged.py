"""The ranges judged eval scores must fall in, shared by the tasks' end-to-end tests."""

from __future__ import annotations

import math

# What every audio sample is judged on (and its reference, as ref_*), with the range of each score.
AUDIO_SCORES = [
    ("sim_own", -1, 1),
    ("sim_other", -1, 1),
    ("sim_margin", -2, 2),
    ("dnsmos_ovrl", 0, 5),
    ("dnsmos_p808", 0, 5),
    ("speech_fraction", 0, 1),
]
# Speech with a text to say is also transcribed and scored.
SPEECH_SCORES = [("wer", 0, 10), ("cer", 0, 10), *AUDIO_SCORES]


def in_range(value, low: float, high: float) -> bool:
    """A score that exists, is finite, and lies in [low, high]."""
    return value is not None and math.isfinite(value) and low <= value <= high
