"""NVIDIA NeMo audio codec adapter (``nvidia/audio-codec-44khz``), through nemo_toolkit's ``AudioCodecModel``.

    wav:   [B, 1, T]  float, mono, at 44.1 kHz
    codes: [B, Q, F]  long in [0, 1000), Q = 8, F = ceil(T / 512)  (86.13 frames/s)

The quantizer is FSQ in groups: the encoder's latent is split into 8 slices and codebook q quantises slice q
alone. The codebooks are therefore not residual (``residual = False``): all 8 are needed to decode anything, and
there is no ``n_q`` to truncate to.

``pretrained`` is a ``.nemo`` file or a hub id. A hub id names the file ``{repo name}.nemo`` in that repo (NeMo's
own convention, e.g. ``audio-codec-44khz.nemo``); it is read from the local Hugging Face cache first and
downloaded only when that misses and the hub may be used (see :mod:`audiolm.hub`: without network it fails at
once). What cannot be had is reported as one
:class:`CodecUnavailableError` naming the hub id, the file and ``codec.pretrained``.

Batching: the token store pads a batch with zeros and keeps ``num_frames(T_b)`` frames of item b. The encoder's
convolutions are non-causal and pad with reflection at the end of the signal, so every clip is zero-padded to a
whole number of frames plus ``lookahead`` samples (the encoder's reach, computed from its layers): frame f of a clip
then depends on the clip alone, never on what follows it in a batch.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path, PurePosixPath
from typing import Any, Self

import torch
import torch.nn.functional as F

from audiolm.codecs.base import AudioCodec
from audiolm.codecs.errors import CodecUnavailableError
from audiolm.codecs.hf import HUB_ID
from audiolm.errors import ConfigError
from audiolm.hub import why_not_download

DEFAULT_HUB_ID = "nvidia/audio-codec-44khz"
INSTALL = (
    "nemo_toolkit and the packages its codec import needs are pinned in requirements.lock: run `make install` "
    "or `pip install -r requirements.lock`. Do not install the nemo_toolkit[tts] extra: it forces "
    "lightning<=2.4.0"
)


def released_config() -> dict[str, Any]:
    """The model section of NeMo's ``audio_codec_44100.yaml``, the recipe of nvidia/audio-codec-44khz, without the
    discriminator (training only): a random model of the released size, for :meth:`NemoCodec.from_config`."""
    modules, losses = "nemo.collections.tts.modules.audio_codec_modules", "nemo.collections.tts.losses.audio_codec_loss"
    return {
        "sample_rate": 44100,
        "samples_per_frame": 512,
        "mel_loss_l1_scale": 10.0,
        "mel_loss_l2_scale": 0.0,
        "stft_loss_scale": 10.0,
        "time_domain_loss_scale": 0.0,
        "commit_loss_scale": 0.0,
        "feature_loss_type": "absolute",
        "loss_resolutions": [
            [32, 8, 32],
            [64, 16, 64],
            [128, 32, 128],
            [256, 64, 256],
            [512, 128, 512],
            [1024, 256, 1024],
            [2048, 512, 2048],
        ],
        "mel_loss_dims": [5, 10, 20, 40, 80, 160, 320],
        "audio_encoder": {
            "_target_": f"{modules}.HiFiGANEncoder",
            "down_sample_rates": [2, 4, 8, 8],
            "encoded_dim": 32,
            "base_channels": 48,
            "activation": "lrelu",
        },
        "audio_decoder": {
            "_target_": f"{modules}.HiFiGANDecoder",
            "up_sample_rates": [8, 8, 4, 2],
            "input_dim": 32,
            "base_channels": 768,
            "activation": "half_snake",
            "output_activation": "clamp",
        },
        "vector_quantizer": {
            "_target_": f"{modules}.GroupFiniteScalarQuantizer",
            "num_groups": 8,
            "num_levels_per_group": [8, 5, 5, 5],
        },
        "generator_loss": {"_target_": f"{losses}.GeneratorSquaredLoss"},
        "discriminator_loss": {"_target_": f"{losses}.DiscriminatorSquaredLoss"},
    }


def _nemo_file(hub_id: str) -> str:
    return PurePosixPath(hub_id).name + ".nemo"


def how_to_provide(hub_id: str) -> str:
    name = _nemo_file(hub_id)
    return (
        f"the NeMo codec needs {name} of the Hugging Face repo {hub_id}: on a machine with network run "
        f"`hf download {hub_id} {name} --local-dir /local/folder`, copy the file here and set "
        f"codec.pretrained=/local/folder/{name}"
    )


def _import_model_class() -> type:
    """nemo's ``AudioCodecModel``, or a CodecUnavailableError saying what to install."""
    if importlib.util.find_spec("nemo") is None:
        raise CodecUnavailableError(f"NeMo codec unavailable: the nemo_toolkit package is not installed; {INSTALL}")
    try:
        from nemo.collections.tts.models import AudioCodecModel
    except ImportError as err:
        raise CodecUnavailableError(
            f"NeMo codec unavailable: importing nemo_toolkit failed because module "
            f"'{err.name}' is missing ({err}); {INSTALL}"
        ) from None
    except TypeError as err:
        # nv-one-logger (imported by every NeMo model) subclasses Lightning's Trainer, and its save_checkpoint
        # signature is refused at class creation by Lightning >= 2.6, whose weights_only became Optional.
        import lightning

        raise CodecUnavailableError(
            f"NeMo codec unavailable: nemo_toolkit cannot be imported with lightning "
            f"{lightning.__version__} ({err}); it needs lightning 2.5.x (the lock pins "
            f"2.5.6); {INSTALL}"
        ) from None
    return AudioCodecModel


def _resolve(pretrained: str | None, local_files_only: bool) -> tuple[Path, str]:
    """``codec.pretrained`` (a .nemo file or a hub id) -> (the local .nemo file, where it came from), downloading
    the file when allowed."""
    if pretrained is None:
        raise CodecUnavailableError(
            f"no pretrained model given (codec.pretrained is null); {how_to_provide(DEFAULT_HUB_ID)}"
        )
    path = Path(pretrained).expanduser()
    if path.exists() or not HUB_ID.match(pretrained):
        if not path.is_file():
            raise CodecUnavailableError(
                f"codec.pretrained={pretrained} is not a file; {how_to_provide(DEFAULT_HUB_ID)}"
            )
        return path.resolve(), str(path.resolve())
    from huggingface_hub import hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import HfHubHTTPError

    name = _nemo_file(pretrained)
    cached = try_to_load_from_cache(repo_id=pretrained, filename=name)
    if isinstance(cached, str):
        return Path(cached), pretrained
    why = "codec.local_files_only=true" if local_files_only else why_not_download()
    if why:
        raise CodecUnavailableError(
            f"NeMo codec: {name} of {pretrained} is not in the local Hugging Face cache and "
            f"{why}, so it is not downloaded; {how_to_provide(pretrained)}"
        )
    try:
        return Path(hf_hub_download(repo_id=pretrained, filename=name)), pretrained
    except (OSError, ValueError, HfHubHTTPError) as err:
        raise CodecUnavailableError(
            f"NeMo codec: could not download {name} of {pretrained} (no network or no such "
            f"repo: {str(err).splitlines()[0]}); {how_to_provide(pretrained)}"
        ) from None


def _conv_reach(module: torch.nn.Module) -> int:
    """Samples past an output position's first input sample that a NeMo ``Conv1dNorm`` reads, in its input."""
    conv = module.conv
    return (conv.kernel_size[0] - 1) * conv.dilation[0] - conv.padding[0]


def encoder_reach(encoder: torch.nn.Module) -> int:
    """Input samples past frame f's first sample that a ``HiFiGANEncoder`` reads to encode frame f.

    Each layer's reach counts in input samples (times the strides before it). The residual blocks of a stage run
    in parallel, so the block reaching furthest counts; the units inside a block run in sequence, so theirs add up.
    """

    def block_reach(block: torch.nn.Module) -> int:
        return sum(_conv_reach(unit.input_conv) + _conv_reach(unit.skip_conv) for unit in block.res_blocks)

    reach, stride = _conv_reach(encoder.pre_conv), 1
    for res_layer, down in zip(encoder.res_layers, encoder.down_sample_conv_layers, strict=True):
        reach += stride * max(block_reach(block) for block in res_layer.res_blocks)
        reach += stride * _conv_reach(down)
        stride *= down.conv.stride[0]
    return reach + stride * _conv_reach(encoder.post_conv)


class NemoCodec(AudioCodec):
    """A frozen NeMo ``AudioCodecModel`` (HiFi-GAN encoder, FSQ groups) behind :class:`AudioCodec`.

    Args:
        pretrained: a ``.nemo`` file, or a hub id whose repo holds ``{repo name}.nemo``.
        local_files_only: never download; a hub id must then be in the local Hugging Face cache.
    """

    residual = False

    def __init__(self, pretrained: str | None = DEFAULT_HUB_ID, local_files_only: bool = False) -> None:
        model_class = _import_model_class()
        path, source = _resolve(pretrained, local_files_only)
        try:
            model = model_class.restore_from(str(path), map_location="cpu")
        except Exception as err:  # NeMo raises many kinds here (tar, yaml, hydra, state-dict errors)
            raise CodecUnavailableError(
                f"codec.pretrained={pretrained}: restoring {path} with NeMo's "
                f"AudioCodecModel failed ({type(err).__name__}: {err}); the file may be "
                f"damaged or not a NeMo codec; {how_to_provide(DEFAULT_HUB_ID)}"
            ) from None
        self._setup(model, {"pretrained": source})

    @classmethod
    def from_config(cls, cfg: Any, seed: int = 0) -> Self:
        """The same codec around a randomly initialised ``AudioCodecModel(cfg)`` (seeded): for tests and benchmarks.

        ``cfg`` is the ``model`` section of a NeMo codec config (a dict or DictConfig), e.g. :func:`released_config`;
        the code path after loading is the pretrained one.
        """
        from omegaconf import OmegaConf

        model_class = _import_model_class()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = model_class(cfg=OmegaConf.create(cfg))
        codec = cls.__new__(cls)
        codec._setup(model, {"model_config": OmegaConf.to_container(OmegaConf.create(cfg)), "seed": seed})
        return codec

    def _setup(self, model: Any, source: dict[str, Any]) -> None:
        AudioCodec.__init__(self)
        where = f"codec.pretrained={source['pretrained']}" if "pretrained" in source else "this model config"
        if getattr(model, "vector_quantizer", None) is None:
            raise ConfigError(
                f"{where}: this NeMo AudioCodecModel has no quantizer, so it produces no codes; "
                f"use a codec model such as {DEFAULT_HUB_ID}"
            )
        encoder = type(model.audio_encoder).__name__
        if encoder != "HiFiGANEncoder":
            raise ConfigError(
                f"{where}: the NeMo adapter reads codecs with a HiFiGANEncoder (e.g. {DEFAULT_HUB_ID}); "
                f"this model's encoder is {encoder}"
            )
        if model.output_sample_rate != model.sample_rate:
            raise ConfigError(
                f"{where}: this NeMo codec takes {model.sample_rate} Hz but outputs "
                f"{model.output_sample_rate} Hz; an AudioCodec has one sample rate"
            )
        # The discriminator only serves training; dropping it frees its memory.
        model.discriminator = None
        self.model = model.float().eval().requires_grad_(False)
        self.source = source
        self.sample_rate = int(model.sample_rate)
        self.hop_length = int(model.samples_per_frame)
        self.frame_rate = self.sample_rate / self.hop_length
        self.n_codebooks = int(model.num_codebooks)
        self.codebook_size = int(model.codebook_size)
        reach = encoder_reach(model.audio_encoder)
        self.lookahead = -(-reach // self.hop_length) * self.hop_length

    def num_frames(self, num_samples: int) -> int:
        return -(-num_samples // self.hop_length)

    @torch.no_grad()
    def _encode(self, wav: torch.Tensor) -> torch.Tensor:
        """wav: [B, 1, T] at 44.1 kHz -> codes: [B, Q, ceil(T / hop_length)] long."""
        frames = self.num_frames(wav.shape[-1])
        pad = frames * self.hop_length - wav.shape[-1] + self.lookahead
        x = F.pad(wav[:, 0].to(self.device, torch.float32), (0, pad))
        lengths = torch.full((x.shape[0],), x.shape[-1], dtype=torch.long, device=x.device)
        codes, _ = self.model.encode(audio=x, audio_len=lengths)  # [B, Q, F + lookahead / hop], int32
        return codes[..., :frames].long().contiguous()

    @torch.no_grad()
    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes: [B, Q, F], all Q codebooks -> wav: [B, 1, F * hop_length]."""
        lengths = torch.full((codes.shape[0],), codes.shape[-1], dtype=torch.long, device=self.device)
        wav, _ = self.model.decode(tokens=codes.to(self.device, torch.long), tokens_len=lengths)  # [B, F * hop]
        return wav.unsqueeze(1)

    def config_dict(self) -> dict[str, Any]:
        return {"codec": type(self).__name__, **self.source, "n_q": self.n_codebooks}
