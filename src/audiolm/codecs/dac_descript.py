"""Original Descript DAC checkpoints (``weights_44khz_8kbps_0.0.1.pth``, ...) read into transformers' ``DacModel``.

The ``descript-audio-codec`` package is not a dependency: its descript-audiotools pins protobuf<3.20, which breaks
wandb and nemo_toolkit. Its checkpoints are plain torch pickles ``{"state_dict": ..., "metadata": {"kwargs":
constructor arguments}}``, and its modules differ from ``DacModel``'s only in their names and in weight
normalisation. So reading one is a key mapping plus folding each ``(weight_g, weight_v)`` pair into the plain
``weight`` that ``DacModel`` holds; transformers' own conversion script does the same.

    descript                                      transformers DacModel   (n = number of strides)
    encoder.block.0                               encoder.conv1
    encoder.block.i.block.j.block.{0,1,2,3}       encoder.block.{i-1}.res_unit{j+1}.{snake1,conv1,snake2,conv2}
    encoder.block.i.block.{3,4}                   encoder.block.{i-1}.{snake1,conv1}
    encoder.block.{n+1,n+2}                       encoder.{snake1,conv2}
    decoder.model.0                               decoder.conv1
    decoder.model.i.block.{0,1}                   decoder.block.{i-1}.{snake1,conv_t1}
    decoder.model.i.block.j.block.{0,1,2,3}       decoder.block.{i-1}.res_unit{j-1}.{snake1,conv1,snake2,conv2}
    decoder.model.{n+1,n+2}                       decoder.{snake1,conv2}
    quantizer.quantizers.*                        quantizer.quantizers.*  (same names)
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from transformers import DacConfig, DacModel

from audiolm.codecs.errors import CodecUnavailableError

RESIDUAL_UNIT = ("snake1", "conv1", "snake2", "conv2")


def dac_config(kwargs: dict) -> DacConfig:
    """DacConfig from the constructor arguments a descript checkpoint records."""
    rates = [int(r) for r in kwargs["encoder_rates"]]
    latent = kwargs.get("latent_dim") or kwargs["encoder_dim"] * 2 ** len(rates)
    if [int(r) for r in kwargs["decoder_rates"]] != rates[::-1] or latent != kwargs["encoder_dim"] * 2 ** len(rates):
        raise CodecUnavailableError(
            f"this descript DAC checkpoint has decoder_rates={kwargs['decoder_rates']} and "
            f"latent_dim={latent}; transformers' DacModel only builds decoder_rates = "
            f"reversed encoder_rates ({rates[::-1]}) and latent_dim = encoder_dim * "
            f"2**len(encoder_rates), as in the released 16/24/44 kHz models"
        )
    return DacConfig(
        encoder_hidden_size=int(kwargs["encoder_dim"]),
        downsampling_ratios=rates,
        decoder_hidden_size=int(kwargs["decoder_dim"]),
        n_codebooks=int(kwargs["n_codebooks"]),
        codebook_size=int(kwargs["codebook_size"]),
        codebook_dim=int(kwargs["codebook_dim"]),
        quantizer_dropout=float(kwargs.get("quantizer_dropout") or 0.0),
        sampling_rate=int(kwargs["sample_rate"]),
    )


def _encoder_module(parts: list[str], n: int) -> str:
    i = int(parts[0])
    if i == 0:
        return "encoder.conv1"
    if i in (n + 1, n + 2):
        return "encoder.snake1" if i == n + 1 else "encoder.conv2"
    j = int(parts[2])  # parts: i, "block", j, ...
    if j < 3:
        return f"encoder.block.{i - 1}.res_unit{j + 1}.{RESIDUAL_UNIT[int(parts[4])]}"
    return f"encoder.block.{i - 1}.{'snake1' if j == 3 else 'conv1'}"


def _decoder_module(parts: list[str], n: int) -> str:
    i = int(parts[0])
    if i == 0:
        return "decoder.conv1"
    if i in (n + 1, n + 2):
        return "decoder.snake1" if i == n + 1 else "decoder.conv2"
    j = int(parts[2])
    if j < 2:
        return f"decoder.block.{i - 1}.{'snake1' if j == 0 else 'conv_t1'}"
    return f"decoder.block.{i - 1}.res_unit{j - 1}.{RESIDUAL_UNIT[int(parts[4])]}"


def rename(key: str, n_strides: int) -> tuple[str, str]:
    """A descript parameter name -> (DacModel module name, parameter name)."""
    *module, param = key.split(".")
    if module[:2] == ["encoder", "block"]:
        return _encoder_module(module[2:], n_strides), param
    if module[:2] == ["decoder", "model"]:
        return _decoder_module(module[2:], n_strides), param
    if module[:2] == ["quantizer", "quantizers"]:
        return ".".join(module), param
    raise KeyError(key)


def to_dac_state_dict(state: dict[str, torch.Tensor], n_strides: int) -> dict[str, torch.Tensor]:
    """Rename a descript state dict to DacModel's names and fold weight norms: w = g * v / ||v|| (norm over all
    dimensions but the first, as ``torch.nn.utils.weight_norm`` with its default ``dim=0``)."""
    grouped: dict[str, dict[str, torch.Tensor]] = {}
    unknown = []
    for key, value in state.items():
        try:
            module, param = rename(key, n_strides)
        except (KeyError, ValueError, IndexError):
            unknown.append(key)
            continue
        grouped.setdefault(module, {})[param] = value
    if unknown:
        raise ValueError(f"{len(unknown)} parameter(s) that no DAC module has, e.g. {unknown[:3]}")
    out = {}
    for module, params in grouped.items():
        if "weight_g" in params and "weight_v" in params:
            g, v = params.pop("weight_g"), params.pop("weight_v")
            params["weight"] = v * (g / v.flatten(1).norm(dim=1).view(-1, *[1] * (v.ndim - 1)))
        out.update({f"{module}.{name}": value for name, value in params.items()})
    return out


def load_descript_checkpoint(path: Path) -> DacModel:
    """A DacModel (float32, CPU) holding the weights of the descript checkpoint at ``path``."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        kwargs, state = checkpoint["metadata"]["kwargs"], checkpoint["state_dict"]
    except (OSError, RuntimeError, pickle.UnpicklingError, KeyError, TypeError, EOFError) as err:
        raise CodecUnavailableError(
            f"codec.pretrained={path} is not a readable descript DAC checkpoint (a torch "
            f"file with 'state_dict' and 'metadata': {{'kwargs': ...}}, as the DAC "
            f"releases ship): {type(err).__name__}: {err}"
        ) from None
    try:
        config = dac_config(kwargs)
    except (KeyError, TypeError, ValueError) as err:
        raise CodecUnavailableError(
            f"codec.pretrained={path}: its metadata lacks the DAC constructor argument "
            f"{err} (or it is malformed); it is not a descript DAC checkpoint"
        ) from None
    model = DacModel(config)
    try:
        model.load_state_dict(to_dac_state_dict(state, len(config.downsampling_ratios)), strict=True)
    except (ValueError, RuntimeError) as err:
        raise CodecUnavailableError(
            f"codec.pretrained={path}: its weights do not fit a DAC of its own recorded configuration ({err})"
        ) from None
    return model.float()
