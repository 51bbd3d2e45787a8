"""Quality: DNSMOS (speechmos's ONNX models, in its wheel) on clips that silero-vad hears speech in.

DNSMOS alone rates silence above noisy speech (its BAK rewards a clean background), so a clip whose
speech fraction is below ``min_speech`` gets the floor of the MOS scale (1.0 on every score) and a note.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from audiolm.judges.base import Batch, Judge
from audiolm.judges.vad import SileroVad

KEYS = {"ovrl_mos": "dnsmos_ovrl", "sig_mos": "dnsmos_sig", "bak_mos": "dnsmos_bak", "p808_mos": "dnsmos_p808"}


def load_dnsmos():
    """speechmos's non-personalised DNSMOS (SIG/BAK/OVRL model + P.808 model)."""
    import speechmos
    from speechmos.dnsmos import DNSMOS

    models = Path(speechmos.__file__).parent / "dnsmos_models"
    return DNSMOS(str(models / "sig_bak_ovr.onnx"), str(models / "model_v8.onnx"))


class DNSMOSJudge(Judge):
    """``dnsmos_ovrl``, ``dnsmos_sig``, ``dnsmos_bak``, ``dnsmos_p808``: MOS estimates in [1, 5].

    Args:
        min_speech: the speech fraction (silero-vad) below which a clip is "no speech" and gets 1.0.
        vad: a ``SileroVad`` to share with other judges (one is loaded when None).
    """

    name = "dnsmos"
    sample_rate = 16000
    min_seconds = 0.25
    floor = dict.fromkeys(KEYS.values(), 1.0)

    def __init__(self, min_speech: float = 0.1, vad: SileroVad | None = None):
        self.min_speech = min_speech
        self.vad = vad or SileroVad()
        self.model = load_dnsmos()

    def _score(self, batch: Batch, notes: list[str]) -> dict[int, dict[str, float]]:
        out = {}
        for i in batch.valid:
            wav = batch.wavs[i]
            fraction = self.vad.fraction(wav)
            if fraction < self.min_speech:
                notes.append(f"clip {i}: no speech (speech fraction {fraction:.2f} < {self.min_speech}), MOS 1.0")
                continue
            # speechmos tiles a clip shorter than its 9 s window (and loops forever on an empty one,
            # which the base class never passes); it refuses values outside [-1, 1].
            result = self.model(np.clip(wav, -1.0, 1.0), self.sample_rate, False)
            out[i] = {name: float(result[key]) for key, name in KEYS.items()}
        return out
