"""DAC specifics on a tiny random model of the real class: the decoder's look-ahead covers the encoder's
reach, and the original descript `.pth` checkpoints load (or are refused with a clear error)."""

from __future__ import annotations

import pytest
import torch
from transformers import DacConfig, DacModel

from audiolm.codecs.dac import DacCodec, encoder_reach
from audiolm.codecs.errors import CodecUnavailableError

from support.tiny_codecs import TINY_CONFIGS, codec_factory, noise_batch


@pytest.fixture(scope="module")
def make(tmp_path_factory):
    """make(kind, n_q=None) -> a tiny codec of that kind (cached); n_q=None uses every level."""
    return codec_factory(tmp_path_factory.getbasetemp())


def test_dac_lookahead_covers_the_encoder_reach(make):
    """The last input sample a frame's latent depends on lies within the padding the codec adds."""
    codec = make("dac")
    hop, frame = codec.hop_length, 10
    wav = torch.randn(1, 1, 60 * hop, requires_grad=True)
    with torch.enable_grad():
        codec.model.encoder(wav)[..., frame].sum().backward()
    reach = int(wav.grad[0, 0].nonzero().max()) - frame * hop
    assert reach == encoder_reach(codec.model.config)
    assert codec.lookahead - hop < reach < codec.lookahead
    assert encoder_reach(DacConfig()) == 4244  # dac_44khz: 0.1 s, padded to 9 hops of 512


def descript_checkpoint(model: DacModel) -> dict:
    """A descript-audio-codec checkpoint of ``model``'s weights: descript's module names, each convolution
    weight-normed (weight_g, weight_v) as torch.nn.utils.weight_norm stores it, and its constructor kwargs."""
    config = model.config
    n = len(config.downsampling_ratios)
    names = {
        "encoder.conv1": "encoder.block.0",
        "encoder.snake1": f"encoder.block.{n + 1}",
        "encoder.conv2": f"encoder.block.{n + 2}",
        "decoder.conv1": "decoder.model.0",
        "decoder.snake1": f"decoder.model.{n + 1}",
        "decoder.conv2": f"decoder.model.{n + 2}",
    }
    for b in range(n):
        names |= {
            f"encoder.block.{b}.snake1": f"encoder.block.{b + 1}.block.3",
            f"encoder.block.{b}.conv1": f"encoder.block.{b + 1}.block.4",
            f"decoder.block.{b}.snake1": f"decoder.model.{b + 1}.block.0",
            f"decoder.block.{b}.conv_t1": f"decoder.model.{b + 1}.block.1",
        }
        for r in range(3):
            for k, part in enumerate(("snake1", "conv1", "snake2", "conv2")):
                names[f"encoder.block.{b}.res_unit{r + 1}.{part}"] = f"encoder.block.{b + 1}.block.{r}.block.{k}"
                names[f"decoder.block.{b}.res_unit{r + 1}.{part}"] = f"decoder.model.{b + 1}.block.{r + 2}.block.{k}"
    state = {}
    for key, value in model.state_dict().items():
        module, param = key.rsplit(".", 1)
        module = names.get(module, module)  # the quantizer's names are the same
        if param == "weight" and value.ndim == 3:  # every (transposed) convolution
            state[f"{module}.weight_g"] = value.flatten(1).norm(dim=1).view(-1, 1, 1)
            state[f"{module}.weight_v"] = 3.0 * value  # weight norm keeps only v's direction
        else:
            state[f"{module}.{param}"] = value
    kwargs = {
        "encoder_dim": config.encoder_hidden_size,
        "encoder_rates": list(config.downsampling_ratios),
        "latent_dim": config.hidden_size,
        "decoder_dim": config.decoder_hidden_size,
        "decoder_rates": list(config.downsampling_ratios)[::-1],
        "n_codebooks": config.n_codebooks,
        "codebook_size": config.codebook_size,
        "codebook_dim": config.codebook_dim,
        "quantizer_dropout": False,
        "sample_rate": config.sampling_rate,
    }
    return {"state_dict": state, "metadata": {"kwargs": kwargs}}


def test_dac_reads_descript_checkpoints(make, tmp_path):
    codec = make("dac")
    path = tmp_path / "weights_6khz.pth"
    torch.save(descript_checkpoint(codec.model), path)
    loaded = DacCodec(str(path), n_q=3)
    assert loaded.config_dict() == {"codec": "DacCodec", "pretrained": str(path.resolve()), "n_q": 3}
    theirs, ours = loaded.model.state_dict(), codec.model.state_dict()
    assert theirs.keys() == ours.keys()
    for key in ours:
        torch.testing.assert_close(theirs[key], ours[key], rtol=1e-5, atol=1e-6, msg=key)
    _, batch = noise_batch([9 * codec.hop_length + 2])
    assert torch.equal(loaded.encode(batch), codec.encode(batch)[:, :3])


def test_dac_refuses_unreadable_descript_files(tmp_path):
    with pytest.raises(CodecUnavailableError, match="no such descript DAC checkpoint file"):
        DacCodec(str(tmp_path / "absent.pth"))
    garbage = tmp_path / "weights.pth"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(CodecUnavailableError, match="not a readable descript DAC checkpoint"):
        DacCodec(str(garbage))
    checkpoint = descript_checkpoint(DacModel(TINY_CONFIGS["dac"]()))
    checkpoint["state_dict"]["encoder.block.9.weight"] = torch.zeros(1)
    torch.save(checkpoint, garbage)
    with pytest.raises(CodecUnavailableError, match="do not fit a DAC"):
        DacCodec(str(garbage))


# ----------------------------------------------------------------------------------- loading and offline errors
