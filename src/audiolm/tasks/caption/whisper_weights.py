"""Building the Whisper encoder: from pretrained weights, or random for tests and CPU demos.

``load_whisper_encoder(source)`` takes any of:

- an openai-whisper checkpoint file (what ``whisper.load_model(path)`` reads: ``dims`` +
  ``model_state_dict``); only the encoder half is kept;
- a bare encoder state dict saved with ``torch.save(model.encoder.state_dict(), path)``, as the
  seed did (dimensions are read off the tensor shapes; every Whisper size has 64-dim heads);
- an openai-whisper model name (``large-v3``): the file in openai-whisper's download folder,
  fetched there by openai-whisper when the network allows;
- a transformers ``WhisperModel`` folder or hub id (``openai/whisper-large-v3``): its encoder
  weights are renamed into openai-whisper's layout, so one encoder class serves both.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from whisper import _MODELS, _download
from whisper.model import AudioEncoder

from audiolm.errors import ConfigError, MissingFileError
from audiolm.tasks.caption.whisper import WhisperEncoder

KEY = "task.model.encoder.source"
HEAD_DIM = 64
# transformers WhisperEncoder names -> openai-whisper AudioEncoder names, applied in this order (the
# blocks' norms are renamed before the final "layer_norm.", which their names contain)
HF_RENAMES = [
    ("embed_positions.weight", "positional_embedding"),
    ("layers.", "blocks."),
    ("self_attn.q_proj.", "attn.query."),
    ("self_attn.k_proj.", "attn.key."),
    ("self_attn.v_proj.", "attn.value."),
    ("self_attn.out_proj.", "attn.out."),
    ("self_attn_layer_norm.", "attn_ln."),
    ("final_layer_norm.", "mlp_ln."),
    ("fc1.", "mlp.0."),
    ("fc2.", "mlp.2."),
    ("layer_norm.", "ln_post."),
]


def random_whisper_encoder(
    n_mels: int = 80,
    n_state: int = 64,
    n_head: int = 2,
    n_layer: int = 2,
    n_ctx: int = 1500,
    trim: bool = True,
    seed: int = 0,
) -> WhisperEncoder:
    """A randomly initialised encoder. Being frozen, it is never saved: ``seed`` rebuilds the same one."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return WhisperEncoder(AudioEncoder(n_mels, n_ctx, n_state, n_head, n_layer), trim=trim)


def load_whisper_encoder(
    source: str, trim: bool = False, dtype: str = "float32", download_root: str | None = None
) -> WhisperEncoder:
    """The pretrained encoder named by ``source`` (see the module docstring), frozen, in ``dtype``."""
    state, n_head = _encoder_state(str(source), download_root)
    encoder = _encoder_from_state(state, n_head, source)
    return WhisperEncoder(encoder.to(getattr(torch, dtype)), trim=trim)


def _encoder_state(source: str, download_root: str | None) -> tuple[dict[str, torch.Tensor], int | None]:
    """The encoder's weights in openai-whisper names, and its head count where the source says it."""
    path = Path(source).expanduser()
    if path.is_file():
        return _state_from_file(path)
    if path.suffix in (".pt", ".pth", ".bin"):
        raise MissingFileError(f"Whisper checkpoint not found: {path} (set {KEY} to an existing file)")
    if path.is_dir() or ("/" in source and not source.startswith((".", "/", "~"))):
        return _state_from_transformers(source)
    if source in _MODELS:
        return _state_from_file(_whisper_download(source, download_root))
    raise MissingFileError(
        f"Whisper encoder weights not found: {source!r} is not a file, a folder, an openai-whisper model name "
        f"({', '.join(sorted(_MODELS))}) or a hub id. Set {KEY} to one of these, e.g. "
        f"{KEY}=/path/to/large-v3.pt or {KEY}=openai/whisper-large-v3"
    )


def _whisper_download(name: str, download_root: str | None) -> Path:
    root = Path(download_root or os.path.join(os.getenv("XDG_CACHE_HOME", Path.home() / ".cache"), "whisper"))
    url = _MODELS[name]
    target = root / os.path.basename(url)
    try:  # openai-whisper checks the SHA-256 of a file already there and fetches it only if it is missing or bad
        return Path(_download(url, str(root), in_memory=False))
    except Exception as exc:  # noqa: BLE001 - any network failure means the same thing to the user
        raise MissingFileError(
            f"openai-whisper checkpoint {name!r} is not at {target} (or is damaged) and could not be downloaded from "
            f"{url} "
            f"({type(exc).__name__}). Download it on a machine with network access and copy it there, or set "
            f"{KEY}=/path/to/{os.path.basename(url)} (task.model.encoder.download_root sets the folder)"
        ) from None


def _state_from_file(path: Path) -> tuple[dict[str, torch.Tensor], int | None]:
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # noqa: BLE001 - unreadable file: say which and why
        raise ConfigError(
            f"{path} is not a readable torch checkpoint ({type(exc).__name__}: {exc}); {KEY} must name "
            f"an openai-whisper checkpoint or a saved encoder state dict"
        ) from None
    if "model_state_dict" in ckpt:  # a full openai-whisper checkpoint
        state = {k.removeprefix("encoder."): v for k, v in ckpt["model_state_dict"].items() if k.startswith("encoder.")}
        return state, ckpt["dims"]["n_audio_head"]
    return ckpt, None


def _state_from_transformers(source: str) -> tuple[dict[str, torch.Tensor], int | None]:
    from transformers import WhisperModel

    from audiolm.hub import why_not_download

    if not Path(source).expanduser().is_dir():
        why_not_download()  # an unreachable hub switches the process offline: no minute of retries
    try:
        model = WhisperModel.from_pretrained(source)
    except Exception as exc:  # noqa: BLE001 - offline or missing: the hub's own trace helps nobody here
        raise MissingFileError(
            f"could not load the transformers Whisper model {source!r} ({type(exc).__name__}): it is neither a "
            f"local folder nor in the Hugging Face cache, and the hub was not reachable. Download it where there is "
            f"network (`hf download {source} --local-dir /local/folder`) and set {KEY} to that folder, or use an "
            f"openai-whisper checkpoint: {KEY}=/path/to/large-v3.pt"
        ) from None
    state = {}
    for name, tensor in model.encoder.state_dict().items():
        for old, new in HF_RENAMES:
            name = name.replace(old, new)
        state[name] = tensor
    return state, model.config.encoder_attention_heads


def _encoder_from_state(state: dict[str, torch.Tensor], n_head: int | None, source: str) -> AudioEncoder:
    try:
        n_state, n_mels, _ = state["conv1.weight"].shape
        n_ctx = state["positional_embedding"].shape[0]
    except KeyError:
        raise ConfigError(
            f"{source} holds no Whisper encoder weights (no conv1.weight / positional_embedding); "
            f"{KEY} must name an openai-whisper checkpoint, an encoder state dict or a Whisper "
            f"model"
        ) from None
    n_layer = len({k.split(".")[1] for k in state if k.startswith("blocks.")})
    encoder = AudioEncoder(n_mels, n_ctx, n_state, n_head or n_state // HEAD_DIM, n_layer)
    try:
        encoder.load_state_dict(state)
    except RuntimeError as exc:  # e.g. an MLP width other than Whisper's 4 x n_state
        raise ConfigError(f"{source} does not have the layout of a Whisper encoder: {exc}") from None
    return encoder
