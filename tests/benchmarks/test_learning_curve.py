"""benchmarks/learning.py, shortened: a VALL-E recipe trained two minutes is judged better than the same
recipe untrained (lower WER or a wider speaker margin, by the offline judges)."""

from __future__ import annotations

import importlib.util

import pytest

from conftest import ROOT


def load_benchmark():
    spec = importlib.util.spec_from_file_location("learning", ROOT / "benchmarks" / "learning.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_a_short_valle_run_is_judged_better_than_untrained():
    learning = load_benchmark()
    points = learning.curve("valle", minutes=2.0, n_points=1, samples=4, threads=None, extra=[])
    untrained, trained = points[0], points[-1]
    before, after = untrained["metrics"], trained["metrics"]
    assert trained["step"] > 50 and untrained["minutes"] == 0.0
    assert after["tts/wer"] < before["tts/wer"] or after["tts/sim_margin"] > before["tts/sim_margin"] + 0.02, (
        before,
        after,
    )
