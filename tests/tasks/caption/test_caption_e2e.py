"""The captioner as a user runs it: train.py task=caption, resume, eval.py with caption metrics, the model
loaded in plain Python, and the errors for a missing checkpoint or missing pretrained weights."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from conftest import CAPTION_TINY, ROOT, run_entry

TINY = CAPTION_TINY


def test_checkpoint_holds_only_the_trainable_projector(caption_run):
    first, _ = caption_run
    state = torch.load(first / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    keys = set(state["state_dict"])
    assert keys and all(k.startswith("model.projector.") for k in keys)  # no Whisper, no LLM weights
    assert state["global_step"] == 4


def test_resume_continues_from_the_checkpoint(caption_run):
    _, resumed = caption_run
    state = torch.load(resumed / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert state["global_step"] == 6 and all(k.startswith("model.projector.") for k in state["state_dict"])


def test_eval_writes_captions_beside_references_and_metrics(caption_run, tmp_path):
    _, resumed = caption_run
    proc = run_entry(
        "eval.py",
        f"ckpt={resumed}/checkpoints/last.ckpt",
        f"eval.out_dir={tmp_path}",
        "eval.n_samples=4",
        "eval.max_new_tokens=8",
        "eval.java_metrics=false",
        "eval.num_beams=2",
    )
    captions = json.loads((tmp_path / "captions.json").read_text())
    assert len(captions["captions"]) == 4 and captions["settings"]["num_beams"] == 2
    row = captions["captions"][0]
    assert {"id", "audio", "prediction", "reference"} <= row.keys() and row["reference"].endswith(".")
    assert {"bleu_1", "bleu_4", "rouge_l", "cider_d"} <= captions["metrics"].keys()
    assert any("METEOR and SPICE skipped" in n for n in captions["notes"])
    report = json.loads((tmp_path / "metrics.json").read_text())
    assert {"val/nll", "val/stop_acc", "caption/bleu_4", "caption/cider_d"} <= report["metrics"].keys()
    assert report["sampling"] is None  # captions decode with eval.* keys, not the shared sampler's
    table = (tmp_path / "captions.md").read_text()
    assert "| cider_d |" in table and f"| {row['id']} |" in table
    assert "caption/cider_d" in proc.stdout


def test_trained_captioner_loads_without_a_trainer_and_captions(caption_run):
    from audiolm.checkpoints import load_model
    from audiolm.tasks.caption.model import Captioner
    from audiolm.tasks.inference import Audio, CaptionRequest

    first, _ = caption_run
    model = load_model(first)  # the run folder; no Trainer, no datamodule
    assert isinstance(model, Captioner) and not model.training
    path = next(Path(model.config.paths.data_dir).rglob("*.wav"))  # a clip of the run's corpus
    clip = Audio.load(path, 22050)  # at another rate than Whisper's: generate resamples it
    half = Audio(clip.wav[:, : clip.wav.shape[1] // 2], 22050)
    result = model.generate(CaptionRequest([clip, half], settings={"max_new_tokens": 6}))
    assert len(result.texts) == 2 and all(isinstance(t, str) for t in result.texts)


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    from audiolm.errors import AudiolmError
    from audiolm.runs import evaluate

    with pytest.raises(AudiolmError, match=r"checkpoint not found: .*nope/last.ckpt. Pass .*a file such as"):
        evaluate(tmp_path / "nope" / "last.ckpt", [])


def test_seed_recipe_without_weights_names_what_to_provide(tmp_path, monkeypatch):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from audiolm.errors import MissingFileError
    from audiolm.runs import build, user_error

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # no openai-whisper download folder with weights in it
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose(
            config_name="train",
            overrides=[
                "experiment=caption_musiccaps",
                f"data.csv={tmp_path}/m.csv",
                f"data.audio_dir={tmp_path}",
                f"paths.data_dir={tmp_path}",
            ],
        )
    with pytest.raises(Exception) as raised:  # noqa: PT011 - Hydra wraps the target's error
        build(cfg)
    found = user_error(raised.value)  # what train.py prints, alone, instead of a stack trace
    assert isinstance(found, MissingFileError)
    assert re.search(
        r"'large-v3' is not at .*large-v3.pt \(or is damaged\) and could not be downloaded"
        r".*task.model.encoder.source",
        str(found),
    )


@pytest.mark.slow
def test_captioner_learns_the_embedded_corpus(data_dir, tmp_path):
    """The default recipe, trained 400 steps on CPU, captions held-out clips far better than untrained, and
    names the kind of sound (tone / noise / speech) far above the majority guess."""
    from audiolm.checkpoints import load_task, run_config
    from audiolm.runs import build

    run_entry("train.py", "task=caption", f"paths.data_dir={data_dir}", f"hydra.run.dir={tmp_path}")
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    settings = dict(n_samples=None, batch_size=16, seed=0, max_new_tokens=32, java_metrics=False)
    _, datamodule, trained = load_task(ckpt)
    learned = trained.eval().write_samples(datamodule, tmp_path / "trained", **settings)
    _, datamodule, untrained = build(run_config(ckpt))
    baseline = untrained.eval().write_samples(datamodule, tmp_path / "untrained", **settings)
    for metric, margin in (("caption/bleu_4", 0.1), ("caption/cider_d", 0.5), ("caption/rouge_l", 0.2)):
        assert learned.metrics[metric] > baseline.metrics[metric] + margin, metric

    def kind(text: str) -> str:
        text = text.lower()
        return "noise" if "noise" in text else "speech" if re.search(r"speak|talking|speech", text) else "tone"

    rows = learned.rows
    accuracy = sum(kind(r["prediction"]) == kind(r["reference"]) for r in rows) / len(rows)
    assert accuracy > 0.6  # tones are 40 % of the clips
