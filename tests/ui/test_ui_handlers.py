"""The web UI's tab handlers called directly, on the session's tiny runs: each tab gives what its family's
``model.generate(request)`` gives, and every refusal is the one line a user can act on."""

from __future__ import annotations

import gc
import threading
import weakref
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiolm.checkpoints import load_model
from audiolm.errors import AudiolmError, ConfigError
from audiolm.generation.sampling import Sampler
from audiolm.tasks.inference import Audio, ContinueRequest, SpeechRequest
from audiolm.ui.handlers import Settings, Studio, playable
from audiolm.ui.jobs import Stopped

from ui_runs import bad_clips, corpus_clip, long_clip, make_runs_root

MAX_CLIP = 8.0


@pytest.fixture(scope="module")
def studio(trained_run, tts_run, caption_run, tmp_path_factory) -> Studio:
    root = make_runs_root(tmp_path_factory.mktemp("ui_runs"), trained_run, tts_run, caption_run[0])
    return Studio(Settings(runs_root=root, max_clip_seconds=MAX_CLIP))


@pytest.fixture(scope="module")
def voice(data_dir, studio) -> Path:
    return corpus_clip(data_dir)


def test_the_run_picker_lists_runs_and_exports_under_the_root_and_nothing_else(studio, tmp_path):
    root = studio.settings.runs_root
    assert studio.runs() == ["caption", "exports/lm.safetensors", "lm", "tts"]
    (root / "outside").symlink_to(tmp_path)  # a link out of the root is listed as nothing and refused when named
    try:
        for choice in ("../tts", str(tmp_path), "outside"):
            with pytest.raises(AudiolmError, match="is not under the runs root"):
                studio.load(choice, "cpu")
        with pytest.raises(AudiolmError, match="neither a run folder .* press Refresh"):
            studio.load("lm/csv", "cpu")
        with pytest.raises(AudiolmError, match="no run chosen"):
            studio.load("", "cpu")
    finally:
        (root / "outside").unlink()


def test_the_model_tab_says_what_the_run_is_and_keeps_one_model_resident(studio):
    import pandas as pd

    loaded = studio.load("lm", "cpu")
    log = pd.read_csv(studio.settings.runs_root / "lm" / "csv" / "metrics.csv")
    for part in ("AudioLM", "ContinueRequest", "MelVQCodec", "MambaBackbone", f"steps trained: {log['step'].max()}"):
        assert part in loaded.info
    assert f"| val/nll | {log['val/nll'].dropna().iloc[-1]:.4f} |" in loaded.info
    assert loaded.sampling == {k: getattr(studio.slot.model.sampler, k) for k in loaded.sampling}
    assert loaded.sampling["temperature"] == 0.7 and loaded.steps is None  # configs/sampling/default.yaml
    lm = weakref.ref(studio.slot.model)
    studio.load("lm", "cpu")
    assert studio.slot.model is lm(), "loading the same run again uses the cached model"
    exported = studio.load("exports/lm.safetensors", "cpu")
    gc.collect()
    assert lm() is None, "a newly loaded model replaces the resident one"
    assert "an export" in exported.info and "AudioLM" in exported.info


def test_continue_audio_is_the_models_continuation_with_the_prompt_boundary_marked(studio, voice):
    loaded = studio.load("lm", "cpu")
    (rate, samples), image, summary = studio.continue_audio(str(voice), 0.5, loaded.sampling)
    model = load_model(studio.settings.runs_root / "lm")
    prompt = Audio.load(voice, model.codec.sample_rate)
    expected = model.generate(ContinueRequest(seconds=prompt.seconds + 0.5, prompt=prompt, seed=0))
    assert rate == 16_000 and np.array_equal(samples, playable(expected.audio[0])[1])
    assert summary == f"{expected.prompt_seconds:.2f} s of prompt + 0.50 s generated"
    cyan = (image[..., 0] < 80) & (image[..., 1] > 200) & (image[..., 2] > 200)
    assert cyan.sum(axis=0).max() > image.shape[0] // 3, "a dashed line marks the end of the prompt"
    (_, alone), image, summary = studio.continue_audio(None, 0.5, loaded.sampling)
    assert summary == "unconditional: 0.50 s generated" and len(alone) == 0.5 * rate
    assert not ((image[..., 0] < 80) & (image[..., 1] > 200) & (image[..., 2] > 200)).any()


def test_text_to_speech_is_the_models_speech_in_the_reference_voice_and_is_judged(studio, voice):
    loaded = studio.load("tts", "cpu")
    (rate, samples), image, scores = studio.speak("Hello there.", str(voice), loaded.sampling, 0.4, None, False, False)
    model = load_model(studio.settings.runs_root / "tts")
    reference = Audio.load(voice, model.codec.sample_rate)
    expected = model.generate(SpeechRequest("Hello there.", reference, max_seconds=0.4))
    assert np.array_equal(samples, playable(expected.audio[0])[1]) and scores == "judges off"
    assert image.ndim == 3 and image.shape[-1] == 3
    *_, scores = studio.speak("Hello there.", str(voice), loaded.sampling, 0.4, None, True, True)
    for judged in ("speech_fraction", "dnsmos_ovrl", "sim_own", "wer", "the ASR heard"):
        assert judged in scores


def test_sampler_settings_reach_the_model_and_are_checked_as_the_cli_checks_them(studio, voice):
    loaded = studio.load("tts", "cpu")
    guided = {**loaded.sampling, "cfg_scale": 2.0, "cfg_rescale": 0.5, "temperature": 0.0}
    studio.speak("Hi.", None, guided, 0.2, None, False, False)
    model = studio.slot.model
    assert (model.sampler.cfg_scale, model.sampler.temperature) == (2.0, 0.0)
    assert (model.nar_sampler.cfg_scale, model.nar_sampler.cfg_rescale) == (2.0, 0.5), "VALL-E's NAR pass guides too"
    with pytest.raises(ConfigError) as cli:
        Sampler(top_p=0.0)
    with pytest.raises(ConfigError) as page:
        studio.speak("Hi.", None, {**loaded.sampling, "top_p": 0.0}, 0.2, None, False, False)
    assert str(page.value) == str(cli.value) == "sampling.top_p must be in (0, 1], got 0.0"


def test_a_tab_refuses_a_model_of_another_family_in_one_line(studio, voice):
    sampling = studio.load("lm", "cpu").sampling
    with pytest.raises(AudiolmError, match=r"^the loaded AudioLM does audio continuation .*, not text to speech"):
        studio.speak("Hello.", None, sampling, 1.0, None, False, False)
    with pytest.raises(AudiolmError, match="not captioning"):
        studio.caption(str(voice), 1, 8)
    assert studio.slot.mismatch(ContinueRequest) is None


def test_caption_greedy_and_beam(studio, voice):
    studio.load("caption", "cpu")
    greedy = studio.caption(str(voice), 1, 6)
    assert isinstance(greedy, str) and greedy == studio.caption(str(voice), 1, 6)
    assert isinstance(studio.caption(str(voice), 3, 6), str)
    with pytest.raises(AudiolmError, match="no clip to caption"):
        studio.caption(None, 1, 6)


def test_codec_round_trip_gives_previews_table(studio, voice, data_dir, tmp_path):
    wav_path, table = studio.codec_round_trip(str(voice), "mulaw", 1, "cpu", True)
    decoded, rate = sf.read(wav_path)
    assert rate == 16_000 and abs(len(decoded) - sf.info(voice).frames) < 16
    assert "| 1 | 128.00 |" in table and "DNSMOS OVRL" in table and "STOI" in table and "| input |" in table
    clip = long_clip(data_dir, tmp_path / "six_seconds.wav", 6.0)  # melvq's 256 centroids need 5.12 s of frames
    _, table = studio.codec_round_trip(str(clip), "melvq", 2, "cpu", False)
    assert "| 2 | 0.80 |" in table and "fitted on this clip itself" in table and "no SI-SDR" in table
    with pytest.raises(AudiolmError, match="too short to fit it"):
        studio.codec_round_trip(str(voice), "melvq", 2, "cpu", False)
    with pytest.raises(AudiolmError, match="has 4 levels: choose n_q in 1..4"):
        studio.codec_round_trip(str(clip), "melvq", 8, "cpu", False)
    studio.load("lm", "cpu")
    _, table = studio.codec_round_trip(str(voice), "the loaded run's codec", 4, "cpu", False)
    assert "MelVQCodec" in table and "fitted on this clip" not in table


def test_a_codec_needing_weights_fails_with_the_clis_message(studio, voice):
    from audiolm.runs import user_error

    with pytest.raises(Exception) as page:
        studio.codec_round_trip(str(voice), "encodec", 2, "cpu", False)
    message = str(user_error(page.value))
    assert message.startswith("EncodecCodec: codec.pretrained=facebook/encodec_24khz is neither a folder here")
    assert "\n" not in message


def test_uploads_that_cannot_be_used_are_refused_in_one_line(studio, tmp_path):
    sampling = studio.load("lm", "cpu").sampling
    expected = {
        "notes.wav": r"the prompt \(notes.wav\): not decodable",
        "empty.wav": r"the prompt \(empty.wav\): empty file \(0 bytes\)",
        "ten_minutes.flac": rf"the prompt \(ten_minutes.flac\): 600.0 s long; .* at most {MAX_CLIP:g} s",
    }
    for name, path in bad_clips(tmp_path).items():
        with pytest.raises(AudiolmError, match=expected[name]):
            studio.continue_audio(str(path), 0.5, sampling)


def test_stop_ends_the_generation_behind_the_page(studio):
    sampling = studio.load("lm", "cpu").sampling
    started, outcome = threading.Event(), []

    def job() -> None:
        try:
            studio.continue_audio(None, 600.0, sampling, session="me", progress=lambda *a, **k: started.set())
            outcome.append("finished")
        except Stopped as err:
            outcome.append(err)

    thread = threading.Thread(target=job)
    thread.start()
    assert started.wait(60)
    studio.stop("someone else")  # another page's Stop leaves this job alone
    thread.join(timeout=1.0)
    assert thread.is_alive()
    studio.stop("me")
    thread.join(timeout=20)  # 600 s of audio (30,000 decoding steps) take far longer
    assert not thread.is_alive() and isinstance(outcome[0], Stopped)
    studio.continue_audio(None, 0.2, sampling, session="me")  # the model is free again, and the flag reset


@pytest.mark.slow
def test_parallel_tts_steps_are_set_per_request_as_the_cli_override_sets_them(studio, voice, data_dir):
    from conftest import TTS_TINY, run_entry

    nar = ["task=tts_parallel", *[o for o in TTS_TINY if o != "task=tts"], "task.model.prompt_seconds=1.0"]
    run_dir = studio.settings.runs_root / "parallel"
    run_entry("train.py", *nar, f"paths.data_dir={data_dir}", f"hydra.run.dir={run_dir}")
    loaded = studio.load("parallel", "cpu")
    assert loaded.steps == 16  # configs/task/tts/parallel/mode/nar.yaml
    (_, samples), *_ = studio.speak("Hello there.", str(voice), loaded.sampling, 0.5, 3, False, False)
    assert studio.slot.model.mode.steps == 3
    cli = load_model(run_dir, ["task.model.mode.steps=3"])
    expected = cli.generate(SpeechRequest("Hello there.", Audio.load(voice, 16_000), max_seconds=0.5))
    assert np.array_equal(samples, playable(expected.audio[0])[1])
    with pytest.raises(ConfigError, match="task.model.mode.steps must be >= 1, got 0"):
        studio.speak("Hello there.", None, loaded.sampling, 0.5, 0, False, False)
