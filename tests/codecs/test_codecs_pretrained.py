"""Pretrained codecs (EnCodec, DAC, Mimi through transformers; SpeechTokenizer) on tiny random models of the real
classes: the AudioCodec contract, level truncation, batching, loading from files, offline errors, the token store."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
from transformers import EncodecConfig

from audiolm.codecs.encodec import EncodecCodec
from audiolm.codecs.errors import CodecUnavailableError
from audiolm.codecs.hf import HFCodec
from audiolm.codecs.mimi import MimiCodec
from audiolm.data.manifest import Utterance, write_manifest
from audiolm.data.tokens.tokenize import tokenize_manifest
from audiolm.errors import ConfigError

from support.tiny_codecs import CLASSES, HF_KINDS, KINDS, LEVELS, TINY_CONFIGS, codec_factory, noise_batch


@pytest.fixture(scope="module")
def make(tmp_path_factory):
    """make(kind, n_q=None) -> a tiny codec of that kind (cached); n_q=None uses every level."""
    return codec_factory(tmp_path_factory.getbasetemp())


def lengths_for(codec) -> list[int]:
    hop = codec.hop_length
    return [1, hop - 1, hop, hop + 1, 7 * hop + 3, 40 * hop]


# ----------------------------------------------------------------------------------- the contract


@pytest.mark.parametrize("kind", KINDS)
def test_encode_decode_contract(make, kind):
    codec = make(kind)
    hop = codec.hop_length
    assert codec.frame_rate == codec.sample_rate / hop
    assert (codec.n_codebooks, codec.codebook_size) == (LEVELS[kind], 64 if kind == "encodec" else 32)
    lengths = lengths_for(codec)
    _, batch = noise_batch(lengths)
    codes = codec.encode(batch)
    assert codes.shape == (len(lengths), codec.n_codebooks, codec.num_frames(max(lengths)))
    assert codes.dtype == torch.long
    assert codes.min() >= 0 and codes.max() < codec.codebook_size
    assert codes[:, 0].unique().numel() > 3  # a working quantizer, not one code everywhere
    for n in lengths:
        frames = codec.encode(batch[:1, :, :n]).shape[-1]
        assert frames == codec.num_frames(n) == -(-n // hop)
        assert frames * codec.sample_rate / codec.frame_rate >= n  # the frames cover the clip
    wav = codec.decode(codes)
    assert wav.shape == (len(lengths), 1, codes.shape[-1] * hop) and wav.dtype == torch.float32
    assert torch.isfinite(wav).all()
    assert codec.decode(codes[:, :1]).shape == wav.shape  # fewer levels, same length


@pytest.mark.parametrize("kind", KINDS)
def test_codec_is_frozen(make, kind):
    codec = make(kind)
    assert not codec.model.training
    assert not any(p.requires_grad for p in codec.parameters())


@pytest.mark.parametrize("kind", KINDS)
def test_fewer_levels_are_the_first_levels(make, kind):
    full, two = make(kind), make(kind, n_q=2)
    _, batch = noise_batch([5 * full.hop_length + 1, 17 * full.hop_length])
    assert two.n_codebooks == 2 and two.config_dict() != full.config_dict()
    codes = two.encode(batch)
    assert codes.shape[1] == 2
    assert torch.equal(codes, full.encode(batch)[:, :2])
    assert two.decode(codes).shape == full.decode(full.encode(batch)).shape


@pytest.mark.parametrize("kind", KINDS)
def test_bad_levels_and_inputs_are_refused(make, kind):
    codec = make(kind)
    with pytest.raises(ValueError, match=r"\[B, 1, T\]"):
        codec.encode(torch.zeros(1, 2, 100))
    with pytest.raises(ValueError, match="Q'"):
        codec.decode(torch.zeros(1, codec.n_codebooks + 1, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[0, 32\)|\[0, 64\)"):
        codec.decode(torch.full((1, 1, 3), codec.codebook_size))
    if kind in CLASSES:
        with pytest.raises(ConfigError, match="codec.n_q=5 is out of range"):
            CLASSES[kind].from_config(TINY_CONFIGS[kind](), n_q=5)


@pytest.mark.parametrize("kind", HF_KINDS)
def test_batched_encode_equals_each_clip_alone(make, kind):
    """What the token store relies on: a clip's codes do not depend on the zeros that pad it in a batch."""
    codec = make(kind)
    lengths = lengths_for(codec)
    clips, batch = noise_batch(lengths, seed=1)
    codes = codec.encode(batch)
    for b, clip in enumerate(clips):
        alone = codec.encode(clip[None])
        assert torch.equal(alone[0], codes[b, :, : codec.num_frames(clip.shape[-1])]), lengths[b]


def test_speechtokenizer_semantic_level_split(make):
    codec, semantic = make("speechtokenizer"), make("speechtokenizer", n_q=1)
    assert codec.semantic_levels == semantic.semantic_levels == 1
    _, batch = noise_batch([40 * codec.hop_length])
    assert torch.equal(semantic.encode(batch), codec.encode(batch)[:, : codec.semantic_levels])


def test_mimi_semantic_levels_and_device_moves(make):
    codec = make("mimi")
    assert codec.semantic_levels == 1 and MimiCodec.from_config(TINY_CONFIGS["mimi"](), n_q=1).semantic_levels == 1
    _, batch = noise_batch([10 * codec.hop_length])
    codes = codec.encode(batch)
    codec.to(torch.float64)  # the codebooks' cached tables must follow the buffers, as on .to("cuda")
    try:
        assert all(c._embed is None for c in codec._codebooks())
        assert codec.model.quantizer.acoustic_residual_vector_quantizer.layers[0].codebook.embed.dtype == torch.float64
    finally:
        codec.to(torch.float32)
    assert torch.equal(codec.encode(batch), codes)


# ----------------------------------------------------------------------------------- EnCodec levels and bandwidth


def test_encodec_bandwidth_maps_to_levels():
    config = TINY_CONFIGS["encodec"]()
    assert EncodecCodec.from_config(config, n_q=None, bandwidth=12.0).n_codebooks == 2
    assert EncodecCodec.from_config(config, n_q=2, bandwidth=12.0).bandwidth == 12.0
    assert EncodecCodec.from_config(config, n_q=3).bandwidth == 18.0  # between trained bandwidths: allowed
    with pytest.raises(ConfigError, match="means n_q=2, but codec.n_q=4"):
        EncodecCodec.from_config(config, n_q=4, bandwidth=12.0)
    with pytest.raises(ConfigError, match=r"not one this EnCodec was trained at: \[6.0, 12.0, 24.0\]"):
        EncodecCodec.from_config(config, bandwidth=3.0)
    with pytest.raises(ConfigError, match="needs codec.n_q"):
        EncodecCodec.from_config(config, n_q=None)


def test_encodec_24khz_layout():
    """The real 24 kHz configuration (random weights): 75 frames/s, 0.75 kbps per level, 6 kbps = 8 levels."""
    codec = EncodecCodec.from_config(EncodecConfig(), n_q=None, bandwidth=6.0)
    assert (codec.sample_rate, codec.hop_length, codec.frame_rate, codec.n_codebooks) == (24000, 320, 75.0, 8)
    assert [codec._levels_at(b) for b in (1.5, 3.0, 6.0, 12.0, 24.0)] == [2, 4, 8, 16, 32]
    assert codec.min_frames == 7  # the last kernel-7 convolution reflects 6 frames
    with pytest.raises(ConfigError, match="chunk_length_s"):  # as encodec_48khz
        EncodecCodec.from_config(TINY_CONFIGS["encodec"](chunk_length_s=0.01, overlap=0.01), n_q=2)


# ----------------------------------------------------------------------------------- DAC lookahead and descript files


@pytest.mark.parametrize("kind", HF_KINDS)
def test_loads_a_saved_folder(make, kind, tmp_path):
    codec = make(kind, n_q=2)
    codec.model.save_pretrained(tmp_path)
    loaded = CLASSES[kind](str(tmp_path), n_q=2)
    assert loaded.config_dict() == {"codec": CLASSES[kind].__name__, "pretrained": str(tmp_path.resolve()), "n_q": 2}
    _, batch = noise_batch([6 * codec.hop_length + 5])
    assert torch.equal(loaded.encode(batch), codec.encode(batch))


def assert_says_how_to_fix(message: str, hub_id: str) -> None:
    for expected in (hub_id, "config.json", "model.safetensors", "codec.pretrained=/local/folder"):
        assert expected in message, (expected, message)
    assert "Traceback" not in message


@pytest.mark.parametrize("kind", HF_KINDS)
def test_missing_folder_names_what_to_provide(kind, tmp_path):
    cls = CLASSES[kind]
    with pytest.raises(CodecUnavailableError) as err:
        cls(str(tmp_path / "absent"))
    assert "does not exist" in str(err.value)
    assert_says_how_to_fix(str(err.value), cls.hub_id)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(CodecUnavailableError, match="lacks model.safetensors") as err:
        cls(str(tmp_path))
    assert_says_how_to_fix(str(err.value), cls.hub_id)


@pytest.mark.parametrize("kind", HF_KINDS)
def test_offline_hub_id_names_what_to_provide(kind, monkeypatch):
    cls = CLASSES[kind]
    hub_id = "audiolm-tests/not-a-cached-codec"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CodecUnavailableError) as err:
        cls(hub_id)
    assert "HF_HUB_OFFLINE is set" in str(err.value) and err.value.__cause__ is None
    assert_says_how_to_fix(str(err.value), hub_id)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    with pytest.raises(CodecUnavailableError, match="local_files_only=true") as err:
        cls(hub_id, local_files_only=True)
    assert_says_how_to_fix(str(err.value), hub_id)


def test_checkpoint_missing_weights_is_refused(make, tmp_path):
    """transformers would initialise the absent weights at random and only log it."""
    from safetensors.torch import load_file, save_file

    make("mimi").model.save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    save_file(
        {k: v for k, v in weights.items() if not k.startswith("encoder_transformer.")},
        tmp_path / "model.safetensors",
        metadata={"format": "pt"},
    )
    with pytest.raises(CodecUnavailableError, match=r"lacks or misshapes \d+ weight\(s\) of MimiCodec"):
        MimiCodec(str(tmp_path))


def test_folder_of_another_codec_is_refused(make, tmp_path):
    make("dac").model.save_pretrained(tmp_path)
    with pytest.raises(ConfigError, match="holds a 'dac' model but EncodecCodec reads 'encodec'"):
        EncodecCodec(str(tmp_path))


# ----------------------------------------------------------------------------------- the token store


def test_token_store_round_trip(make, tmp_path):
    codec: HFCodec = make("dac", n_q=3)
    rng = np.random.default_rng(0)
    rows = []
    for i, n in enumerate([6, 7, 64, 65, 301, 777, 1200]):
        sf.write(tmp_path / f"u{i}.wav", 0.3 * rng.standard_normal(n), codec.sample_rate, subtype="FLOAT")
        rows.append(Utterance(path=f"u{i}.wav", duration=n / codec.sample_rate, id=f"u{i}"))
    manifest = write_manifest(tmp_path / "train.jsonl", rows)
    store = tokenize_manifest(manifest, codec, tmp_path / "store", batch_size=3, shard_items=4, progress=False)
    assert len(store) == len(rows)
    assert (store.meta["n_codebooks"], store.meta["frame_rate"], store.meta["codec"]) == (
        3,
        codec.frame_rate,
        codec.config_dict(),
    )
    for i, entry in enumerate(store.entries):
        wav, _ = sf.read(tmp_path / f"{entry['id']}.wav", dtype="float32")
        alone = codec.encode(torch.from_numpy(wav)[None, None])[0].numpy()
        assert store.codes(i).shape == (3, codec.num_frames(len(wav)))
        np.testing.assert_array_equal(store.codes(i), alone)
