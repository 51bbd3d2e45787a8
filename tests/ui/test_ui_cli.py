"""``python -m audiolm.cli.webui``: one command serves the page on 127.0.0.1, ``--help`` answers at once, and
opening the page to other machines is an explicit choice that prints a warning."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request

from audiolm.cli.webui import exposure_warning

from conftest import ROOT
from ui_runs import free_port


def test_help_answers_without_loading_gradio_or_torch():
    loaded = "sorted({'gradio', 'torch'} & set(sys.modules))"
    probe = f"import sys; from audiolm.cli import webui; webui.parser(); print({loaded})"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
    help_text = subprocess.run(
        [sys.executable, "-m", "audiolm.cli.webui", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for option in ("--port", "--runs-root", "--host", "--share", "--max-upload-mb", "--max-clip-seconds"):
        assert option in help_text


def test_only_host_and_share_open_the_page_to_others_and_they_warn():
    assert exposure_warning("127.0.0.1", share=False) is None
    lan = exposure_warning("0.0.0.0", share=False)
    assert lan.startswith("WARNING: every machine that can reach 0.0.0.0 can open this page, with no login")
    assert "anyone with the public link" in exposure_warning("127.0.0.1", share=True)


def test_the_command_serves_the_page_on_localhost(tmp_path):
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "audiolm.cli.webui", "--runs-root", str(tmp_path), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url, seen = f"http://127.0.0.1:{port}", []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(url in line for line in seen):
            seen.append(server.stdout.readline())
            assert server.poll() is None, "".join(seen)
        assert not any("WARNING" in line for line in seen)
        with urllib.request.urlopen(url) as page:
            assert page.status == 200 and b"audiolm" in page.read()
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_missing_runs_root_is_refused_at_once(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "audiolm.cli.webui", "--runs-root", str(tmp_path / "nowhere")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1] == (
        f"python -m audiolm.cli.webui: error: --runs-root {tmp_path / 'nowhere'} is not a folder; train a run first "
        f"(make demo)"
    )
