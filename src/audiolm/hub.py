"""Whether the Hugging Face hub can be reached, decided once per process; offline mode when it cannot.

Without network, huggingface_hub retries every request with back-off (1, 2, 4, 8, 8 s) before giving up, and
transformers asks for several files in turn: a hub id that is not in the local cache costs about a minute of
``Retrying in 8s`` lines before the loader's one-line error. Loaders call :func:`why_not_download` before they
download a hub id that the local cache lacks. It asks the hub's endpoint once per process, with a short timeout,
through huggingface_hub's own HTTP client (so ``HF_ENDPOINT``, the ``*_PROXY`` variables and a client factory
set with ``huggingface_hub.set_client_factory`` apply as they do to downloads), and:

- returns ``None`` when a download may be tried;
- returns why not (``HF_HUB_OFFLINE is set``, or the hub cannot be reached and why) for the loader's own error,
  and when the hub cannot be reached switches huggingface_hub, and with it transformers, to offline mode for the
  rest of the process, so that no later hub call retries either.

huggingface_hub reads ``HF_HUB_OFFLINE`` into ``huggingface_hub.constants.HF_HUB_OFFLINE`` at import, and every
check (``huggingface_hub.is_offline_mode``, which transformers uses too, and the request hook that refuses
requests) reads that constant when it runs: setting it is what switches a running process offline.
"""

from __future__ import annotations

import os
import threading

#: Seconds the reachability probe waits for the endpoint's answer (DNS, connection and response together).
PROBE_TIMEOUT_S = 2.5
_TRUE = {"1", "ON", "YES", "TRUE"}

_lock = threading.Lock()
#: endpoint -> None when it answered, else why it cannot be reached (one line).
_probed: dict[str, str | None] = {}


def offline_by_env() -> bool:
    """True when the environment forbids the hub now (``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE``; read at each
    call, not at import, so that a test or a shell can set it)."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().upper() in _TRUE


def endpoint() -> str:
    """The hub endpoint huggingface_hub downloads from (``HF_ENDPOINT`` when it was set, else huggingface.co)."""
    from huggingface_hub import constants

    return constants.ENDPOINT.rstrip("/")


def _ask(url: str, timeout: float) -> str | None:
    """One HEAD request to ``url`` -> None when it answered below HTTP 500, else why not (one line)."""
    from huggingface_hub.utils import get_session

    outcome: list[str | None] = []

    def request() -> None:
        try:
            status = get_session().head(url, timeout=timeout).status_code
            outcome.append(None if status < 500 else f"it answered HTTP {status}")
        except Exception as err:  # noqa: BLE001 - any failure to get an answer means the same here
            text = str(err).strip().splitlines()
            outcome.append(f"{type(err).__name__}: {text[0]}" if text else type(err).__name__)

    # DNS lookups are not bound by the client's timeout: wait for the answer in a thread, at most the timeout.
    thread = threading.Thread(target=request, name="audiolm-hub-probe", daemon=True)
    thread.start()
    thread.join(timeout + 0.25)
    return outcome[0] if outcome else f"no answer within {timeout:g} s"


def unreachable_reason(timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """None when the hub's endpoint answers, else why it cannot be reached; asked once per process and endpoint."""
    from huggingface_hub import constants

    url = endpoint()
    with _lock:
        if url not in _probed:
            if constants.HF_HUB_OFFLINE:
                # Offline already (HF_HUB_OFFLINE was set at import, or go_offline ran): the client refuses requests.
                return "huggingface_hub is in offline mode"
            reason = _ask(url, timeout)
            _probed[url] = None if reason is None else f"the Hugging Face hub ({url}) cannot be reached ({reason})"
        return _probed[url]


def hub_reachable(timeout: float = PROBE_TIMEOUT_S) -> bool:
    """True when the hub's endpoint answers (see :func:`unreachable_reason`)."""
    return unreachable_reason(timeout) is None


def go_offline() -> None:
    """Switch huggingface_hub and transformers to offline mode for the rest of this process: hub calls then read
    the local cache or fail at once, without retries."""
    from huggingface_hub import constants

    constants.HF_HUB_OFFLINE = True


def why_not_download() -> str | None:
    """Call before downloading a hub id that the local cache lacks: None when the download may be tried, else why
    not, for the loader's one-line error. When the hub cannot be reached, the process goes offline
    (:func:`go_offline`), so the loader's and every later hub call fail at once instead of retrying."""
    if offline_by_env():
        return "HF_HUB_OFFLINE is set"
    reason = unreachable_reason()
    if reason is not None:
        go_offline()
    return reason


def forget() -> None:
    """Forget what was probed (tests; or after the network came back), so that the next call asks again."""
    with _lock:
        _probed.clear()
