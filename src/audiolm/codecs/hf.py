"""Shared base of the pretrained codecs that transformers provides (EnCodec, DAC, Mimi): loading, freezing, padding.

    wav:   [B, 1, T]  float, mono, at ``sample_rate``
    codes: [B, Q, F]  long in [0, codebook_size), F = ceil(T / hop_length)

``pretrained`` is a local folder holding ``config.json`` and ``model.safetensors`` (what ``save_pretrained`` writes
and what the hub repos hold) or a hub id. A hub id is read from the local Hugging Face cache first and downloaded
only when that misses and the hub may be used (not ``local_files_only``, not ``HF_HUB_OFFLINE=1``, and the hub
answers: see :mod:`audiolm.hub`, which fails at once without network instead of retrying for a minute). Whatever
cannot be had is reported as one :class:`CodecUnavailableError` naming the hub id, the files and
``codec.pretrained``, never as a hub client's stack trace.

Batching: the token store pads a batch with zeros and keeps ``num_frames(T_b)`` frames of item b. Every clip is
zero-padded to a whole number of hops (at least ``min_frames``), plus ``lookahead`` samples for encoders that look
ahead (non-causal convolutions), so frame f of a clip depends on the clip alone, never on what follows it in a
batch.
"""

from __future__ import annotations

import json
import re
from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Self

import torch
import torch.nn.functional as F
from transformers import PretrainedConfig, PreTrainedModel

from audiolm.codecs.base import AudioCodec
from audiolm.codecs.errors import CodecUnavailableError
from audiolm.errors import ConfigError
from audiolm.hub import why_not_download

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
#: Weight files transformers reads besides model.safetensors (older exports, sharded checkpoints).
OTHER_WEIGHTS = ("pytorch_model.bin", "model.safetensors.index.json", "pytorch_model.bin.index.json")
HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


def how_to_provide(codec: str, hub_id: str) -> str:
    return (
        f"{codec} needs {CONFIG_FILE} and {WEIGHTS_FILE} of the Hugging Face repo {hub_id}: on a machine with "
        f"network run `hf download {hub_id} {CONFIG_FILE} {WEIGHTS_FILE} --local-dir /local/folder`, copy the "
        f"folder here and set codec.pretrained=/local/folder"
    )


def _check_folder(folder: Path, model_class: type[PreTrainedModel], codec: str, hub_id: str) -> None:
    """Fail with the fix when ``folder`` lacks a file or holds another architecture than ``model_class``."""
    how = how_to_provide(codec, hub_id)
    if not folder.is_dir():
        raise CodecUnavailableError(f"codec.pretrained={folder} does not exist or is not a folder; {how}")
    missing = [CONFIG_FILE] if not (folder / CONFIG_FILE).is_file() else []
    if not any((folder / name).is_file() for name in (WEIGHTS_FILE, *OTHER_WEIGHTS)):
        missing.append(WEIGHTS_FILE)
    if missing:
        raise CodecUnavailableError(f"codec.pretrained={folder} lacks {' and '.join(missing)}; {how}")
    try:
        model_type = json.loads((folder / CONFIG_FILE).read_text()).get("model_type")
    except (OSError, ValueError, AttributeError) as err:
        raise CodecUnavailableError(f"{folder / CONFIG_FILE} is not a readable JSON object ({err}); {how}") from None
    expected = model_class.config_class.model_type
    if model_type != expected:
        raise ConfigError(
            f"codec.pretrained={folder} holds a '{model_type}' model but {codec} reads '{expected}' "
            f"models (e.g. {hub_id}); pick the codec config that matches the folder or another folder"
        )


def _from_pretrained(
    model_class: type[PreTrainedModel], name: str, codec: str, how: str, **options: Any
) -> PreTrainedModel:
    """``model_class.from_pretrained`` in float32, refusing checkpoints that leave weights at random."""
    model, info = model_class.from_pretrained(name, dtype=torch.float32, output_loading_info=True, **options)
    # transformers initialises weights the checkpoint lacks at random and only logs it: codes would be noise.
    mismatched = [str(k[0]) if isinstance(k, tuple) else str(k) for k in info["mismatched_keys"]]
    absent = sorted([*info["missing_keys"], *mismatched])
    if absent:
        raise CodecUnavailableError(
            f"codec.pretrained={name}: the checkpoint lacks or misshapes {len(absent)} "
            f"weight(s) of {codec}'s {model_class.__name__} (e.g. {absent[:3]}); it is "
            f"another model or version; {how}"
        )
    return model


def load_pretrained(
    model_class: type[PreTrainedModel], pretrained: str | None, local_files_only: bool, codec: str, hub_id: str
) -> tuple[PreTrainedModel, str]:
    """Load ``model_class`` from a folder or a hub id -> (model, where it came from)."""
    how = how_to_provide(codec, pretrained if pretrained and HUB_ID.match(pretrained) else hub_id)
    if pretrained is None:
        raise CodecUnavailableError(f"no pretrained model given (codec.pretrained is null); {how}")
    path = Path(pretrained).expanduser()
    if path.exists() or not HUB_ID.match(pretrained):
        _check_folder(path, model_class, codec, hub_id)
        folder = str(path.resolve())
        try:
            return _from_pretrained(model_class, folder, codec, how, local_files_only=True), folder
        except (OSError, ValueError, RuntimeError) as err:
            raise CodecUnavailableError(
                f"codec.pretrained={folder}: loading {codec} from it failed ({err}); the "
                f"files may be damaged or of another model version; {how}"
            ) from None
    # The cache first: asking the hub costs ~30 s of retries without network, even when the cache has the files.
    try:
        return _from_pretrained(model_class, pretrained, codec, how, local_files_only=True), pretrained
    except OSError:
        pass
    why = "codec.local_files_only=true" if local_files_only else why_not_download()
    if why:
        raise CodecUnavailableError(
            f"{codec}: codec.pretrained={pretrained} is neither a folder here nor a hub id "
            f"in the local Hugging Face cache, and {why}, so it is not downloaded; "
            f"{how}"
        ) from None
    try:
        return _from_pretrained(model_class, pretrained, codec, how), pretrained
    except (OSError, ValueError) as err:
        raise CodecUnavailableError(
            f"{codec}: could not download {pretrained} (no network or no such repo: {str(err).splitlines()[0]}); {how}"
        ) from None


class HFCodec(AudioCodec):
    """A frozen transformers codec model behind :class:`AudioCodec`; subclasses name the model and its levels.

    Subclasses set ``model_class`` and ``hub_id`` and implement ``max_levels``, ``_hop_length``,
    ``_encode_padded`` and ``_decode_levels``; ``_levels`` when they take more than ``n_q``, ``_lookahead`` when
    the encoder is not causal, ``_check_model`` when some configurations of the model class are not supported.
    """

    model_class: ClassVar[type[PreTrainedModel]]
    hub_id: ClassVar[str]

    def __init__(self, pretrained: str | None, local_files_only: bool = False, **levels: Any) -> None:
        model, source = load_pretrained(
            self.model_class, pretrained, local_files_only, type(self).__name__, self.hub_id
        )
        self._setup(model, {"pretrained": source}, **levels)

    @classmethod
    def from_config(cls, config: PretrainedConfig, seed: int = 0, **levels: Any) -> Self:
        """The same codec around a randomly initialised ``model_class(config)`` (seeded): for tests and benchmarks.

        ``levels`` are the constructor's level arguments (``n_q``, ...); the code path is the pretrained one.
        """
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = cls.model_class(config)
            codec = cls.__new__(cls)
            codec._setup(
                model, {"model_config": json.loads(config.to_json_string(use_diff=True)), "seed": seed}, **levels
            )
            codec._randomize_codebooks()
        return codec

    def _setup(self, model: PreTrainedModel, source: dict[str, Any], **levels: Any) -> None:
        AudioCodec.__init__(self)
        self.model = model.float().eval().requires_grad_(False)
        self.source = source
        self.sample_rate = int(model.config.sampling_rate)
        self.codebook_size = int(model.config.codebook_size)
        self._check_model()
        self.hop_length = self._hop_length()
        self.frame_rate = self.sample_rate / self.hop_length
        self.lookahead = self._lookahead()
        self.min_frames = self._min_frames()
        self.n_codebooks = self._levels(**levels)

    # ----------------------------------------------------------------------------- subclass hooks

    def _check_model(self) -> None:
        """Refuse (ConfigError) a model configuration the adapter cannot encode correctly."""

    def _randomize_codebooks(self) -> None:
        """Draw codebooks that the model class initialises to zeros (pretrained ones are learned from data), so
        that a random model's codes are diverse."""

    def _levels(self, n_q: int) -> int:
        """Check the level arguments against the model -> Q, the number of levels ``encode`` returns."""
        available = self.max_levels
        if not 1 <= n_q <= available:
            raise ConfigError(f"codec.n_q={n_q} is out of range: {type(self).__name__} has levels 1 to {available}")
        return int(n_q)

    @property
    @abstractmethod
    def max_levels(self) -> int:
        """Levels the model has."""

    @abstractmethod
    def _hop_length(self) -> int:
        """Samples per code frame."""

    def _min_frames(self) -> int:
        """Fewest frames to encode at once for a clip's codes not to depend on the padding after it."""
        return 1

    def _lookahead(self) -> int:
        """Samples past its hop that the last frame's encoding reads; 0 for a causal encoder."""
        return 0

    @abstractmethod
    def _encode_padded(self, wav: torch.Tensor) -> torch.Tensor:
        """wav: [B, 1, N] with N a multiple of the hop -> codes: [B, Q, N / hop]."""

    @abstractmethod
    def _decode_levels(self, codes: torch.Tensor) -> torch.Tensor:
        """codes: [B, Q', F] -> wav: [B, 1, about F * hop]."""

    # ----------------------------------------------------------------------------- AudioCodec

    def num_frames(self, num_samples: int) -> int:
        return -(-num_samples // self.hop_length)

    @torch.no_grad()
    def _encode(self, wav: torch.Tensor) -> torch.Tensor:
        """wav: [B, 1, T] -> codes: [B, Q, ceil(T / hop_length)] long."""
        frames = self.num_frames(wav.shape[-1])
        pad = max(frames, self.min_frames) * self.hop_length - wav.shape[-1] + self.lookahead
        x = F.pad(wav.to(self.device, torch.float32), (0, pad))
        return self._encode_padded(x)[..., :frames].long().contiguous()

    @torch.no_grad()
    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes: [B, Q', F], the first Q' <= Q levels -> wav: [B, 1, F * hop_length]."""
        wav = self._decode_levels(codes.to(self.device, torch.long))
        length = codes.shape[-1] * self.hop_length
        # Transposed convolutions with odd strides come out a few samples short; make every decode F * hop long.
        return F.pad(wav, (0, max(0, length - wav.shape[-1])))[..., :length]

    def config_dict(self) -> dict[str, Any]:
        return {"codec": type(self).__name__, **self.source, "n_q": self.n_codebooks}
