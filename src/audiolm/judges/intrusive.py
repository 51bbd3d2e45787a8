"""Round-trip quality against the input: STOI (pystoi) and wide-band PESQ (pesq), for codec round trips
where the clip given to the codec is the reference of the clip it gives back."""

from __future__ import annotations

import numpy as np

from audiolm.judges.base import Batch, Judge

PESQ_FLOOR = 1.0  # wide-band PESQ maps to MOS-LQO = 0.999 + 4 / (1 + exp(...)): never below ~1.0


class IntrusiveJudge(Judge):
    """``stoi`` in [0, 1] and ``pesq`` (wide band, 16 kHz) in [1.0, 4.64], each clip against its reference.

    The two are cut to the shorter length (a codec may pad its output). A clip or reference that cannot
    be judged, or that PESQ rejects (it finds no utterance in it), gets the floor: stoi 0, pesq 1.0.
    """

    name = "intrusive"
    sample_rate = 16000
    min_seconds = 0.25  # PESQ needs at least a quarter second
    needs_references = True
    floor = {"stoi": 0.0, "pesq": PESQ_FLOOR}

    def __init__(self):
        from pesq import pesq
        from pystoi import stoi

        self._pesq, self._stoi = pesq, stoi

    def _score(self, batch: Batch, notes: list[str]) -> dict[int, dict[str, float]]:
        out = {}
        for i in batch.valid:
            ref = batch.references[i]
            if ref is None:  # the base class noted why
                continue
            n = min(len(ref), len(batch.wavs[i]))
            ref, deg = ref[:n].astype(np.float64), batch.wavs[i][:n].astype(np.float64)
            scores = {"stoi": float(self._stoi(ref, deg, self.sample_rate, extended=False))}
            try:
                scores["pesq"] = float(self._pesq(self.sample_rate, ref, deg, "wb"))
            except Exception as err:  # pesq raises NoUtterancesError / BufferTooShortError
                notes.append(f"clip {i}: PESQ failed ({type(err).__name__}: {err}), pesq {PESQ_FLOOR}")
            out[i] = scores
        return out
