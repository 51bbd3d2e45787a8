"""The web UI launched on 127.0.0.1 and driven over HTTP with ``gradio_client``, as a script would drive it."""

from __future__ import annotations

import shutil

import pytest
import soundfile as sf

from audiolm.errors import ConfigError
from audiolm.ui.app import JOBS, launch, page_message
from audiolm.ui.handlers import Settings, Studio

from ui_runs import corpus_clip, free_port, make_runs_root, noise_wav

MAX_UPLOAD_MB = 0.5


@pytest.fixture(scope="module")
def served(trained_run, tts_run, caption_run, tmp_path_factory):
    """(studio, demo, client) of an app serving the session's runs, closed after the module."""
    from gradio_client import Client

    root = make_runs_root(tmp_path_factory.mktemp("ui_runs"), trained_run, tts_run, caption_run[0])
    studio = Studio(Settings(runs_root=root, max_upload_mb=MAX_UPLOAD_MB, max_clip_seconds=10, concurrency=2))
    demo = launch(studio, "127.0.0.1", free_port(), False, prevent_thread_lock=True, quiet=True)
    try:
        yield studio, demo, Client(demo.local_url, verbose=False)
    finally:
        demo.close()


@pytest.fixture(scope="module")
def voice(data_dir, served):
    return corpus_clip(data_dir)


def test_the_page_is_served_on_localhost_only_with_one_shared_concurrency_limit(served):
    _, demo, _ = served
    assert demo.server_name == "127.0.0.1" and demo.local_url.startswith("http://127.0.0.1:")
    jobs = {fn.name: fn for fn in demo.fns.values() if fn.concurrency_id == JOBS}
    assert set(jobs) == {"load_run", "speak", "continue_audio", "caption", "codec"}
    assert {fn.concurrency_limit for fn in jobs.values()} == {2}


def test_a_client_loads_a_run_and_continues_an_uploaded_clip(served, voice):
    from gradio_client import handle_file

    _, _, client = served
    info, tts_status, lm_status, *_ = client.predict(run="lm", device="cpu", api_name="/load")
    assert "AudioLM" in info and lm_status == "ready: lm" and tts_status.startswith("the loaded AudioLM does")
    audio, image, summary = client.predict(prompt=handle_file(str(voice)), seconds=0.5, api_name="/continue_audio")
    assert summary.endswith("+ 0.50 s generated")
    assert sf.info(audio).duration == pytest.approx(sf.info(voice).duration + 0.5, abs=0.05)
    assert image.endswith((".webp", ".png"))


def test_a_client_speaks_captions_and_round_trips(served, voice):
    from gradio_client import handle_file

    _, _, client = served
    client.predict(run="tts", device="cpu", api_name="/load")
    audio, _, scores = client.predict(
        text="Hello there.", reference=handle_file(str(voice)), max_seconds=0.5, judge=False, api_name="/speak"
    )
    assert 0 < sf.info(audio).duration <= 0.5 + 1e-3 and scores == "judges off"
    client.predict(run="caption", device="cpu", api_name="/load")
    assert isinstance(client.predict(clip=handle_file(str(voice)), max_new_tokens=4, api_name="/caption"), str)
    audio, table = client.predict(clip=handle_file(str(voice)), codec="mulaw", n_q=1, judge=False, api_name="/codec")
    assert sf.info(audio).samplerate == 16_000 and "| 1 | 128.00 |" in table


def test_errors_reach_the_client_as_one_line(served, voice):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    _, _, client = served
    client.predict(run="lm", device="cpu", api_name="/load")
    with pytest.raises(AppError, match=r"^the loaded AudioLM does audio continuation .*: load such a run"):
        client.predict(text="Hello.", reference=None, api_name="/speak")
    with pytest.raises(AppError, match="not in the list of choices"):  # the page never names other server paths
        client.predict(run="../../etc", device="cpu", api_name="/load")
    with pytest.raises(AppError, match="neither a folder here nor a hub id"):
        client.predict(clip=handle_file(str(voice)), codec="encodec", n_q=2, api_name="/codec")


def test_uploads_over_the_size_limit_are_refused_by_the_client_and_the_server(served, tmp_path):
    import httpx
    from gradio_client import handle_file

    _, demo, client = served
    big = noise_wav(tmp_path / "big.wav", MAX_UPLOAD_MB * 1024 / 32 * 1.5)
    with pytest.raises(Exception, match="exceeds the maximum file size"):
        client.predict(clip=handle_file(str(big)), codec="mulaw", n_q=1, api_name="/codec")
    with big.open("rb") as f:  # past the client's own check, the server refuses it too
        answer = httpx.post(f"{demo.local_url}gradio_api/upload", files={"files": f})
    assert answer.status_code == 413 and "maximum allowed size" in answer.text


def test_refresh_lists_a_run_added_while_the_page_is_up(served):
    studio, _, client = served
    root = studio.settings.runs_root
    shutil.copytree(root / "lm", root / "later" / "lm")
    assert ["later/lm", "later/lm"] in client.predict(api_name="/runs")["choices"]
    assert "AudioLM" in client.predict(run="later/lm", device="cpu", api_name="/load")[0]


def test_page_messages_are_the_users_error_or_one_named_line():
    assert page_message(ConfigError("sampling.top_p must be in (0, 1], got 0.0")) == (
        "sampling.top_p must be in (0, 1], got 0.0"
    )
    message = page_message(KeyError("codes"))
    assert message.startswith("KeyError: 'codes'") and "server log" in message and "Traceback" not in message
