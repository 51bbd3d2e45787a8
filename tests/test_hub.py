"""audiolm.hub: the hub's reachability is asked once per process, through huggingface_hub's own client (so
HF_ENDPOINT, HF_HUB_OFFLINE and proxies apply), and an unreachable hub switches the process offline at once."""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import threading
import time

import huggingface_hub.constants
import pytest
from huggingface_hub.utils import close_session

from audiolm import hub


class _Answer(http.server.BaseHTTPRequestHandler):
    def do_HEAD(self) -> None:  # noqa: N802 - the http.server name
        self.server.requests += 1
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def online(monkeypatch):
    """A process that may use the hub (the test session sets HF_HUB_OFFLINE=1), with nothing probed yet; restores
    huggingface_hub's offline constant, its shared client and the probe cache afterwards."""
    for name in (
        "HF_HUB_OFFLINE",
        "TRANSFORMERS_OFFLINE",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    hub.forget()
    close_session()  # the shared client reads the proxy variables when it is made
    yield monkeypatch
    hub.forget()
    close_session()


@pytest.fixture
def server(online):
    """A local endpoint that answers HEAD requests and counts them."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    httpd.requests = 0
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    online.setattr(huggingface_hub.constants, "ENDPOINT", url)
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_reachable_endpoint_is_asked_once(server):
    assert hub.why_not_download() is None
    assert hub.hub_reachable() and hub.why_not_download() is None
    assert server.requests == 1
    assert huggingface_hub.constants.HF_HUB_OFFLINE is False


def test_unreachable_endpoint_goes_offline_at_once_and_is_remembered(online):
    url = f"http://127.0.0.1:{closed_port()}"
    online.setattr(huggingface_hub.constants, "ENDPOINT", url)
    asked = []
    ask = hub._ask
    online.setattr(hub, "_ask", lambda *a: asked.append(a) or ask(*a))
    start = time.monotonic()
    why = hub.why_not_download()
    assert time.monotonic() - start < 2
    assert why.startswith(f"the Hugging Face hub ({url}) cannot be reached (") and "\n" not in why
    # The rest of the process is offline: huggingface_hub and transformers (which asks huggingface_hub) refuse at once.
    assert huggingface_hub.constants.HF_HUB_OFFLINE is True and huggingface_hub.is_offline_mode()
    assert hub.why_not_download() == why and not hub.hub_reachable()
    assert len(asked) == 1


def test_silent_endpoint_costs_only_the_timeout(online):
    """A host that accepts the connection but never answers (a black-holing firewall, a dead proxy)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        online.setattr(huggingface_hub.constants, "ENDPOINT", f"http://127.0.0.1:{listener.getsockname()[1]}")
        start = time.monotonic()
        why = hub.unreachable_reason(timeout=0.3)
        assert time.monotonic() - start < 1.5
    assert "cannot be reached" in why


@pytest.mark.parametrize("variable", ["HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"])
def test_offline_variables_skip_the_probe(online, variable):
    online.setenv(variable, "1")
    online.setattr(hub, "_ask", lambda *a: pytest.fail("asked the hub although offline mode is set"))
    assert hub.offline_by_env() and hub.why_not_download() == "HF_HUB_OFFLINE is set"


def test_offline_since_import_is_not_asked(online):
    online.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    online.setattr(hub, "_ask", lambda *a: pytest.fail("asked the hub although huggingface_hub is offline"))
    assert hub.why_not_download() == "huggingface_hub is in offline mode"


def test_proxy_variables_are_honoured(server):
    """The probe goes through huggingface_hub's client, so a dead proxy makes the hub unreachable as it would the
    downloads, and NO_PROXY lets the endpoint through again."""
    server_url = huggingface_hub.constants.ENDPOINT
    server.requests = 0
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("NO_PROXY")
        mp.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port()}")
        close_session()
        assert "cannot be reached" in hub.unreachable_reason(timeout=1.0)
        assert server.requests == 0
    hub.forget()
    close_session()
    assert hub.unreachable_reason() is None and server.requests == 1, server_url


def test_hf_endpoint_is_the_one_asked():
    env = {**os.environ, "HF_ENDPOINT": "http://127.0.0.1:9/"}
    env.pop("HF_HUB_OFFLINE", None)
    out = subprocess.run(
        [sys.executable, "-c", "from audiolm import hub; print(hub.endpoint())"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    assert out.strip() == "http://127.0.0.1:9"
