"""ITU-R BS.1770-4 integrated loudness (LUFS), measured on a stream of mono blocks.

The K-weighting pre-filter is the standard's two biquads (a high shelf, then a high pass),
re-derived for any sample rate from their analogue prototypes; at 48 kHz the coefficients equal
the ones tabulated in the standard. They run with ``scipy.signal.sosfilt``, state carried from block
to block, so a stream is filtered exactly as one pass over the whole signal would be. Mean squares
are kept per 100 ms step, so the gated 400 ms blocks (75 % overlap) of a 1-hour file cost 36 000
floats, not the audio.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.signal import sosfilt

ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
STEP_SECONDS = 0.1  # block hop; a gating block is 4 steps (400 ms)


def k_weighting(rate: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The two K-weighting biquads at ``rate`` as (b, a) pairs, a[0] == 1."""
    # Stage 1: high shelf, +4 dB above ~1.7 kHz (head diffraction).
    f0, gain_db, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = math.tan(math.pi * f0 / rate)
    vh = 10 ** (gain_db / 20)
    vb = vh**0.4996667741545416
    a0 = 1 + k / q + k * k
    shelf_b = np.array([vh + vb * k / q + k * k, 2 * (k * k - vh), vh - vb * k / q + k * k]) / a0
    shelf_a = np.array([1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0])
    # Stage 2: RLB high pass at ~38 Hz.
    f0, q = 38.13547087602444, 0.5003270373238773
    k = math.tan(math.pi * f0 / rate)
    a0 = 1 + k / q + k * k
    hp_b = np.array([1.0, -2.0, 1.0])
    hp_a = np.array([1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0])
    return [(shelf_b, shelf_a), (hp_b, hp_a)]


class LoudnessMeter:
    """Feed mono blocks [n] with ``add``; read ``integrated()`` (LUFS) and ``peak`` (max |sample|)."""

    def __init__(self, rate: int):
        self.rate = rate
        self.step = max(int(round(STEP_SECONDS * rate)), 1)
        self.sos = np.array([np.concatenate([b, a]) for b, a in k_weighting(rate)])  # [2 biquads, 6]
        self._state = np.zeros((len(self.sos), 2))  # filter memory carried across blocks
        self.peak = 0.0
        self.n_samples = 0
        self._pending = np.zeros(0)  # K-weighted samples not yet filling a whole step
        self._steps: list[np.ndarray] = []  # sums of squares, one per 100 ms step

    def _weight(self, x: np.ndarray) -> np.ndarray:
        """K-weighted ``x``, continuing the filters' state from the previous block."""
        y, self._state = sosfilt(self.sos, x, zi=self._state)
        return y

    def add(self, block: np.ndarray) -> None:
        if not len(block):
            return
        x = block.astype(np.float64)
        self.peak = max(self.peak, float(np.abs(x).max()))
        self.n_samples += len(x)
        y = np.concatenate([self._pending, self._weight(x)])
        n = len(y) // self.step
        self._steps.append((y[: n * self.step] ** 2).reshape(n, self.step).sum(axis=1))
        self._pending = y[n * self.step :]

    def block_loudness(self) -> np.ndarray:
        """Loudness (LUFS) of every 400 ms gating block; audio under 400 ms counts as one block."""
        steps = np.concatenate(self._steps) if self._steps else np.zeros(0)
        if len(steps) < 4:
            total, n = steps.sum() + (self._pending**2).sum(), len(steps) * self.step + len(self._pending)
            z = np.array([total / max(n, 1)])
        else:
            z = np.convolve(steps, np.ones(4), mode="valid") / (4 * self.step)
        with np.errstate(divide="ignore"):
            return -0.691 + 10 * np.log10(z)

    def integrated(self) -> float:
        """Gated integrated loudness in LUFS; ``-inf`` when no block reaches the -70 LUFS absolute gate."""
        loud = self.block_loudness()
        loud = loud[loud > ABSOLUTE_GATE_LUFS]
        if not len(loud):
            return -math.inf
        energy = 10 ** ((loud + 0.691) / 10)
        relative = -0.691 + 10 * math.log10(energy.mean()) + RELATIVE_GATE_LU
        return -0.691 + 10 * math.log10(energy[loud > relative].mean())
