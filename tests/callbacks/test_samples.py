"""Samples during training: WAVs and spectrograms under the run, audio and images in TensorBoard, within budget."""

from __future__ import annotations

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import TINY, run_entry


def test_a_run_writes_and_logs_samples_and_skips_rounds_over_budget(data_dir, tmp_path):
    # every validation samples (steps 3 and 6), but a budget this small leaves only the first round
    proc = run_entry(
        "train.py",
        *TINY,
        "logger=default",
        "callbacks.samples.every_n_steps=3",
        "callbacks.samples.budget=1e-9",
        f"paths.data_dir={data_dir}",
        f"hydra.run.dir={tmp_path}",
    )
    rounds = sorted(p.name for p in (tmp_path / "samples").iterdir())
    assert rounds == ["step_000003"], rounds
    first = tmp_path / "samples" / "step_000003"
    wavs = sorted(first.glob("unconditional_*.wav")) + sorted(first.glob("continuation_*.wav"))
    assert len(wavs) == 4 and all(w.with_suffix(".png").is_file() for w in wavs)
    assert "samples at step 6 skipped" in proc.stdout + proc.stderr
    header = (tmp_path / "csv" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"val/judge/dnsmos_ovrl", "val/judge/sim_margin", "val/judge/speech_fraction"} <= set(header)

    events = EventAccumulator(
        str(next((tmp_path / "tensorboard").rglob("events.out.tfevents.*")).parent),
        size_guidance={"audio": 0, "images": 0},
    ).Reload()
    assert "samples/unconditional_0" in events.Tags()["audio"]
    assert "samples/continuation_1/mel" in events.Tags()["images"]
