"""Without network, a codec that defaults to a hub id fails at once with its one-line error (issue 17, item 2).

huggingface_hub retries every request for ~23 s, and transformers asks for two files: without the reachability probe
of audiolm.hub, `python train.py codec=encodec` printed 20 `Retrying in ...` lines and took ~55 s to say what to do.
The test session sets HF_HUB_OFFLINE=1; these tests remove it, as a user who has no network but never set it."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import huggingface_hub.constants
import pytest
from huggingface_hub.utils import close_session

from audiolm import hub
from audiolm.codecs.encodec import EncodecCodec
from audiolm.codecs.errors import CodecUnavailableError

ROOT = Path(__file__).resolve().parents[2]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def offline_user_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The user's environment: HF_HUB_OFFLINE not set, an empty Hugging Face cache (so no cached codec is found)."""
    env = {
        **os.environ,
        "HYDRA_FULL_ERROR": "0",
        "WANDB_MODE": "offline",
        "PYTHONWARNINGS": "ignore",
        "HF_HUB_CACHE": str(tmp_path / "hf-cache"),
        **extra,
    }
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        env.pop(name, None)
    return env


def hub_answers() -> bool:
    """Whether this machine reaches the real hub (asked as the probe would, outside the test session's offline mode)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
        answer = hub._ask(hub.endpoint(), hub.PROBE_TIMEOUT_S) is None
    close_session()
    return answer


def run_train(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    command = [sys.executable, str(ROOT / "train.py"), "codec=encodec", f"hydra.run.dir={tmp_path / 'run'}"]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def assert_fails_fast_in_one_line(proc: subprocess.CompletedProcess) -> None:
    """No retries (each took seconds; ~55 s in all before audiolm.hub), one line that says what to do."""
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output[-3000:]
    assert "Retrying" not in output and "Traceback" not in output, output[-3000:]
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, output[-3000:]
    assert re.search(
        r"EncodecCodec: codec\.pretrained=facebook/encodec_24khz is neither a folder here nor a hub id "
        r"in the local Hugging Face cache, and the Hugging Face hub \(\S+\) cannot be reached",
        errors[0],
    )
    assert "hf download facebook/encodec_24khz config.json model.safetensors" in errors[0]
    assert "set codec.pretrained=/local/folder" in errors[0]


def test_train_without_network_fails_at_once(tmp_path):
    """The user's case, exactly: no network, HF_HUB_OFFLINE not set."""
    if hub_answers():
        pytest.skip("this machine reaches the Hugging Face hub; the closed-endpoint test covers the offline case")
    assert_fails_fast_in_one_line(run_train(tmp_path, offline_user_env(tmp_path)))


def test_train_with_a_dead_endpoint_fails_at_once(tmp_path):
    """The same on any machine: an HF_ENDPOINT that refuses connections stands for a missing network."""
    env = offline_user_env(tmp_path, HF_ENDPOINT=f"http://127.0.0.1:{closed_port()}")
    assert_fails_fast_in_one_line(run_train(tmp_path, env))


def test_codec_without_network_says_why_and_goes_offline(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    hub.forget()
    try:
        start = time.monotonic()
        with pytest.raises(CodecUnavailableError, match="cannot be reached") as err:
            EncodecCodec()
        assert time.monotonic() - start < 5
        assert err.value.__cause__ is None and "\n" not in str(err.value)
        assert "codec.pretrained=/local/folder" in str(err.value)
        assert huggingface_hub.constants.HF_HUB_OFFLINE is True  # later hub calls of this process fail at once
    finally:
        hub.forget()
        close_session()
