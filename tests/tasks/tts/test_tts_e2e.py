"""TTS end to end on the synthetic corpus, as a user runs it: prepare -> train -> checkpoint -> synthesize
(from the checkpoint and from exports) -> eval judged by ASR, speaker, DNSMOS and VAD; bad input on the way."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiolm.cli import export, prepare_tts, synthesize

from conftest import TTS_TINY, run_entry
from support.judged import SPEECH_SCORES, in_range
from support.tts_models import tiny_whisper_checkpoint, tiny_xvector_model


@pytest.fixture(scope="module")
def ref_wav(data_dir) -> Path:
    return sorted(data_dir.glob("embedded/*/wavs/us_male/*.wav"))[0]


def test_training_logs_ar_and_nar_figures_for_every_level(tts_run):
    assert (tts_run / "checkpoints" / "last.ckpt").is_file()
    header = (tts_run / "csv" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"train/ar/nll", "train/nar/nll", "val/ar/acc", "val/nar/acc", "val/nll"} <= set(header)
    assert {f"val/nll_q{q}" for q in range(4)} | {f"val/acc_q{q}" for q in range(4)} <= set(header)


def test_prepare_tts_finds_the_corpus_the_run_trained_on(data_dir, capsys):
    store = prepare_tts.main([f"paths.data_dir={data_dir}", *[o for o in TTS_TINY if o.startswith("data.corpus")]])
    out = capsys.readouterr().out
    assert "TTS corpus: 24 utterances" in out and "us_male" in out
    assert all("phonemes" in e["extra"] for e in store.entries)


def test_items_prompt_with_another_utterance_of_the_same_speaker(data_dir):
    from audiolm.data.tts import TTSItems
    from audiolm.text.frontend import TextFrontend

    store = prepare_tts.main([f"paths.data_dir={data_dir}", *[o for o in TTS_TINY if o.startswith("data.corpus")]])
    val = TTSItems(
        store, list(range(len(store))), max_frames=10_000, train=False, text=TextFrontend(), prompt_seconds=0.5
    )
    for k in range(0, len(val), 5):
        i, item = val.indices[k], val[k]
        speaker = store.entries[i]["speaker"]
        sources = [
            j
            for j in range(len(store))
            if np.array_equal(store.codes(j)[:, : item["prompt"].shape[1]], item["prompt"].numpy())
        ]
        assert sources and all(j != i and store.entries[j]["speaker"] == speaker for j in sources)
        assert np.array_equal(val[k]["prompt"], item["prompt"]), "validation prompts are repeatable"
    short = TTSItems(store, list(range(len(store))), max_frames=100, train=True, text=TextFrontend())
    assert all(store.entries[i]["n_frames"] <= 100 for i in short.indices) and len(short) < len(store)


def test_synthesize_from_checkpoint_and_from_exports(tts_run, ref_wav, tmp_path):
    ckpt = tts_run / "checkpoints" / "last.ckpt"
    args = ["Hello there. How are you today?", "--ref", str(ref_wav), "--max-seconds", "0.4", "--seed", "3"]
    from_ckpt = synthesize.main([*args, "--out", str(tmp_path / "a.wav"), f"ckpt={ckpt}"])
    wav, rate = sf.read(from_ckpt)
    assert rate == 16000 and len(wav) > 0.3 * rate and np.abs(wav).max() > 1e-3
    fp32 = export.main([f"ckpt={ckpt}", "--out", str(tmp_path / "m.safetensors")])
    again = synthesize.main([*args, "--out", str(tmp_path / "b.wav"), f"ckpt={fp32}"])
    assert np.array_equal(sf.read(again)[0], wav), "an fp32 export speaks exactly as its checkpoint"
    bf16 = export.main([f"ckpt={ckpt}", "--dtype", "bf16", "--out", str(tmp_path / "m16.safetensors")])
    assert bf16.stat().st_size < 0.7 * fp32.stat().st_size  # the fp32 codec state stays
    assert sf.read(synthesize.main([*args, "--out", str(tmp_path / "c.wav"), f"ckpt={bf16}"]))[0].size > 0


@pytest.mark.parametrize(
    "args,message",
    [
        (["", "--out", "x.wav"], "the text is empty"),
        (["*** !!!", "--out", "x.wav"], "nothing to pronounce"),
        (["Hello.", "--out", "x.wav", "--language", "xx-yy"], "not supported by espeak-ng"),
        (["Hello.", "--out", "x.wav", "--ref", "silent.wav"], "is silent"),
        (["Hello.", "--out", "x.wav", "--ref", "missing.wav"], "prompt audio not found"),
    ],
)
def test_bad_input_is_a_clear_error(tts_run, tmp_path, capsys, args, message):
    sf.write(tmp_path / "silent.wav", np.zeros(16000), 16000)
    args = [str(tmp_path / a) if a.endswith(".wav") else a for a in args]
    with pytest.raises(SystemExit) as exit:
        synthesize.main([*args, f"ckpt={tts_run / 'checkpoints' / 'last.ckpt'}"])
    assert exit.value.code == 1 and message in capsys.readouterr().err


def test_missing_checkpoint_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        synthesize.main(["Hello.", "--out", str(tmp_path / "x.wav"), f"ckpt={tmp_path / 'none.ckpt'}"])
    assert "checkpoint not found" in capsys.readouterr().err


def test_eval_judges_samples_and_references_with_the_offline_judges(tts_run, tmp_path):
    out = tmp_path / "eval"
    proc = run_entry("eval.py", f"ckpt={tts_run / 'checkpoints' / 'last.ckpt'}", f"eval.out_dir={out}")
    report = json.loads((out / "metrics.json").read_text())
    metrics = report["metrics"]
    assert {"val/ar/nll", "val/nar/nll", "val/nll_q3", "val/acc_q1"} <= set(metrics)
    for side in ("", "ref_"):  # the samples, and their ceiling: the references through the same judges
        for key, low, high in SPEECH_SCORES:
            assert in_range(metrics[f"tts/{side}{key}"], low, high), f"tts/{side}{key}"
            assert f"tts/{side}{key}" in proc.stdout
    assert metrics["tts/ref_speech_fraction"] > 0.5, "the references are speech"
    samples = report["samples"]
    assert len(samples) == 2 and len({r["speaker"] for r in samples}) == 2, "one sample per held-out speaker"
    for r in samples:
        assert isinstance(r["transcript"], str) and isinstance(r["ref_transcript"], str)
        assert all(in_range(r[f"{side}{key}"], low, high) for side in ("", "ref_") for key, low, high in SPEECH_SCORES)
        for key in ("file", "prompt", "reference"):
            assert sf.info(out / r[key]).samplerate == 16000


def test_eval_scores_samples_with_whisper_and_xvector_models(tts_run, tmp_path):
    out = tmp_path / "eval"
    run_entry(
        "eval.py",
        f"ckpt={tts_run / 'checkpoints' / 'last.ckpt'}",
        f"eval.out_dir={out}",
        "eval.judges=[asr,speaker]",
        f"eval.asr_checkpoint={tiny_whisper_checkpoint(tmp_path)}",
        f"eval.speaker_model={tiny_xvector_model(tmp_path)}",
    )
    report = json.loads((out / "metrics.json").read_text())
    metrics = report["metrics"]
    assert metrics["tts/wer"] >= 0 and metrics["tts/cer"] >= 0 and metrics["tts/ref_wer"] >= 0
    assert -1 <= metrics["tts/sim_own"] <= 1 and -2 <= metrics["tts/sim_margin"] <= 2
    assert not any("dnsmos" in k for k in metrics), "only the judges eval.judges names"
    samples = report["samples"]
    assert len(samples) == 2 and all("transcript" in r and -1 <= r["sim_own"] <= 1 for r in samples)


def test_judging_off_is_a_note(tts_run, tmp_path):
    from audiolm.checkpoints import load_task

    _, datamodule, task = load_task(tts_run / "checkpoints" / "last.ckpt")
    datamodule.setup("validate")
    out = task.eval().write_samples(datamodule, tmp_path, n_samples=1, batch_size=1, seed=0, max_seconds=0.2, judges=[])
    assert len(out.rows) == 1 and out.metrics == {}
    assert any("judging off" in n and "eval.judges" in n for n in out.notes)


def test_the_asr_judges_lm_never_hears_held_out_texts(tts_run, tmp_path, monkeypatch):
    from audiolm.checkpoints import load_task
    from audiolm.judges.asr import ASRJudge
    from audiolm.metrics.tts import normalize_text

    heard = []

    def build(cls, lm_texts, *args, **kwargs):
        heard.append(list(lm_texts or []))
        return cls(lambda wav: "", "stub")

    monkeypatch.setattr(ASRJudge, "build", classmethod(build))
    _, datamodule, task = load_task(tts_run / "checkpoints" / "last.ckpt")
    datamodule.setup("validate")
    task.eval().write_samples(datamodule, tmp_path, n_samples=2, batch_size=1, seed=0, max_seconds=0.2, judges=["asr"])
    entries = datamodule.store.entries
    held_out = {normalize_text(entries[i]["text"]) for i in datamodule.val_indices}
    assert len(heard) == 1 and heard[0], "an LM built once, from texts"
    assert not {normalize_text(t) for t in heard[0]} & held_out
    assert set(heard[0]) <= {entries[i]["text"] for i in datamodule.train_indices}


def test_a_trained_model_loads_and_speaks_in_plain_python(tts_run, ref_wav):
    from audiolm.checkpoints import load_model
    from audiolm.tasks.inference import Audio, SpeechRequest
    from audiolm.tasks.tts.valle.model import VallE

    model = load_model(tts_run)  # the run folder: no Trainer, no datamodule
    assert isinstance(model, VallE) and not model.training
    reference = Audio.load(ref_wav, model.codec.sample_rate)
    result = model.generate(SpeechRequest("Hello there.", reference=reference, max_seconds=0.4, seed=3))
    audio = result.audio[0]
    assert audio.sample_rate == 16000 and 0 < audio.seconds <= 0.4 and float(audio.wav.abs().max()) > 1e-3


@pytest.mark.slow
def test_lora_finetune_exports_an_adapter_that_synthesizes(tts_run, data_dir, ref_wav, tmp_path):
    base = tts_run / "checkpoints" / "last.ckpt"
    run_entry(
        "train.py",
        *TTS_TINY,
        "trainer.max_steps=2",
        "task.lora.rank=4",
        f"task.lora.base={base}",
        f"paths.data_dir={data_dir}",
        f"hydra.run.dir={tmp_path / 'lora'}",
    )
    adapter = export.main(
        [
            f"ckpt={tmp_path / 'lora' / 'checkpoints' / 'last.ckpt'}",
            "--adapter",
            "--out",
            str(tmp_path / "voice.safetensors"),
        ]
    )
    wav = synthesize.main(
        [
            "Hello.",
            "--ref",
            str(ref_wav),
            "--out",
            str(tmp_path / "v.wav"),
            "--max-seconds",
            "0.4",
            "--adapter",
            str(adapter),
            f"ckpt={base}",
        ]
    )
    assert sf.read(wav)[0].size > 0
