"""NemoCodec on tiny random-initialised NeMo ``AudioCodecModel``s: the recipe of nvidia/audio-codec-44khz
(``released_config``: HiFi-GAN encoder and decoder, 8 FSQ groups of levels [8, 5, 5, 5], hop 512 at 44.1 kHz) with
fewer channels. No mock: the codec under test is loaded from a real ``.nemo`` file that NeMo's ``save_to`` writes."""

from __future__ import annotations

import sys
from pathlib import Path

import huggingface_hub.constants
import pytest
import torch
from nemo.collections.tts.models import AudioCodecModel
from omegaconf import OmegaConf

from audiolm.codecs.errors import CodecUnavailableError
from audiolm.codecs.nemo import NemoCodec, encoder_reach, released_config

# The recipe of nvidia/audio-codec-44khz with fewer channels (48 -> 4 in the encoder, 768 -> 32 in the decoder) and
# one loss resolution: the same classes, strides, kernels and FSQ groups, hence the same frames and encoder reach.
TINY = released_config() | {"loss_resolutions": [[512, 128, 512]], "mel_loss_dims": [16]}
TINY["audio_encoder"] = TINY["audio_encoder"] | {"base_channels": 4}
TINY["audio_decoder"] = TINY["audio_decoder"] | {"base_channels": 32}
HUB = "nvidia/audio-codec-44khz"
FILE = "audio-codec-44khz.nemo"


def tiny_model(seed: int = 0) -> AudioCodecModel:
    torch.manual_seed(seed)
    model = AudioCodecModel(cfg=OmegaConf.create(TINY))
    # A random encoder's latent barely leaves FSQ's centre code; a trained one spans the levels. Scale its output
    # convolution (the weight-norm gain) so that the codes vary and the equality checks below mean something.
    with torch.no_grad():
        model.audio_encoder.post_conv.conv.parametrizations.weight.original0.mul_(50.0)
    return model


@pytest.fixture(scope="module")
def nemo_file(tmp_path_factory) -> str:
    """A real .nemo file of the tiny model, written by NeMo's own ``save_to``."""
    path = tmp_path_factory.mktemp("nemo") / FILE
    tiny_model().save_to(str(path))
    return str(path)


@pytest.fixture(scope="module")
def codec(nemo_file) -> NemoCodec:
    return NemoCodec(pretrained=nemo_file)


def speechlike(lengths: list[int], seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [0.3 * torch.randn(1, n, generator=g) for n in lengths]


def test_properties(codec):
    assert (codec.sample_rate, codec.n_codebooks, codec.codebook_size) == (44100, 8, 1000)
    assert codec.frame_rate == pytest.approx(86.1328125)
    assert codec.residual is False
    assert codec.num_frames(44100) == 87 and codec.num_frames(512) == 1 and codec.num_frames(513) == 2


def test_encode_decode_shapes_dtypes_ranges(codec):
    wav = torch.stack(speechlike([44100, 44100]))
    codes = codec.encode(wav)
    assert codes.shape == (2, 8, codec.num_frames(44100)) and codes.dtype == torch.long
    assert codes.min() >= 0 and codes.max() < 1000
    # A random encoder is nearly stationary on noise: a few codes per codebook, but more than one.
    assert sum(codes[:, q].unique().numel() for q in range(8)) > 2 * 8, "the codes should vary"
    out = codec.decode(codes)
    assert out.shape == (2, 1, 87 * 512) and out.dtype == torch.float32 and torch.isfinite(out).all()


def test_batched_equals_single_for_clips_of_different_lengths(codec):
    # As the token store batches: zero-pad to the longest clip, keep num_frames(T_b) frames of item b.
    wavs = speechlike([30000, 9000, 700], seed=1)
    batch = torch.zeros(len(wavs), 1, max(w.shape[-1] for w in wavs))
    for b, w in enumerate(wavs):
        batch[b, :, : w.shape[-1]] = w
    batched = codec.encode(batch)
    for b, w in enumerate(wavs):
        alone = codec.encode(w[None])
        assert alone.shape[-1] == codec.num_frames(w.shape[-1])
        assert torch.equal(batched[b, :, : alone.shape[-1]], alone[0]), f"clip {b} depends on its batch"


def test_lookahead_covers_what_the_encoder_reads(codec):
    # Which input samples move frame f's latent: the gradient is non-zero exactly on its receptive field.
    hop, f = codec.hop_length, 24
    x = torch.zeros(1, hop * 64, requires_grad=True)
    encoder = codec.model.audio_encoder
    with torch.enable_grad():
        latent, _ = encoder(audio=x, audio_len=torch.tensor([x.shape[-1]]))
        latent[0, :, f].sum().backward()
    last_read = int(x.grad[0].nonzero().max())
    assert encoder_reach(encoder) == last_read - f * hop
    assert codec.lookahead >= last_read - f * hop and codec.lookahead % hop == 0


def test_decode_needs_every_fsq_codebook(codec):
    codes = codec.encode(torch.stack(speechlike([4096])))
    with pytest.raises(ValueError, match="FSQ"):
        codec.decode(codes[:, :4])
    with pytest.raises(ValueError, match=r"\[0, 1000\)"):
        codec.decode(torch.full_like(codes, 1000))


def test_encode_rejects_stereo(codec):
    with pytest.raises(ValueError, match="mono"):
        codec.encode(torch.zeros(1, 2, 4096))


def test_loads_the_nemo_file_it_names(codec, nemo_file):
    assert codec.config_dict() == {"codec": "NemoCodec", "pretrained": nemo_file, "n_q": 8}
    assert codec.model.discriminator is None
    wav = torch.stack(speechlike([20000]))
    with torch.no_grad():
        direct, _ = tiny_model().encode(audio=wav[:, 0], audio_len=torch.tensor([20000]))
    # The adapter's padding changes only the frames within the encoder's reach of the clip's end.
    keep = codec.num_frames(20000) - codec.lookahead // codec.hop_length
    assert torch.equal(codec.encode(wav)[..., :keep], direct[..., :keep].long())


def test_from_config_builds_the_same_codec_at_random():
    codec = NemoCodec.from_config(TINY, seed=0)
    assert (codec.sample_rate, codec.n_codebooks, codec.codebook_size, codec.hop_length) == (44100, 8, 1000, 512)
    assert codec.config_dict() == {"codec": "NemoCodec", "model_config": TINY, "seed": 0, "n_q": 8}
    assert codec.encode(torch.zeros(1, 1, 1000)).shape == (1, 8, 2)


def test_loads_a_hub_id_from_the_local_cache(nemo_file, tmp_path, monkeypatch):
    snapshot = tmp_path / "models--nvidia--audio-codec-44khz" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / FILE).write_bytes(Path(nemo_file).read_bytes())
    (tmp_path / "models--nvidia--audio-codec-44khz" / "refs").mkdir()
    (tmp_path / "models--nvidia--audio-codec-44khz" / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    loaded = NemoCodec(pretrained=HUB, local_files_only=True)
    assert loaded.config_dict()["pretrained"] == HUB and loaded.n_codebooks == 8


def assert_says_how_to_fix(err: pytest.ExceptionInfo, *extra: str) -> None:
    message = str(err.value)
    for part in (HUB, FILE, "codec.pretrained=", *extra):
        assert part in message, f"{part!r} missing from: {message}"
    assert "Traceback" not in message


def test_offline_hub_id_names_hub_file_and_key(tmp_path, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CodecUnavailableError) as err:
        NemoCodec(pretrained=HUB)
    assert_says_how_to_fix(err, "HF_HUB_OFFLINE")


def test_missing_or_bad_files_name_hub_file_and_key(tmp_path):
    for pretrained in (None, str(tmp_path / "nowhere" / FILE), str(tmp_path)):
        with pytest.raises(CodecUnavailableError) as err:
            NemoCodec(pretrained=pretrained)
        assert_says_how_to_fix(err)
    not_nemo = tmp_path / FILE
    not_nemo.write_text("this is not a tar archive")
    with pytest.raises(CodecUnavailableError) as err:
        NemoCodec(pretrained=str(not_nemo))
    assert_says_how_to_fix(err, "restoring")


def test_missing_nemo_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "nemo", None)  # what `import nemo` and find_spec see when it is not installed
    with pytest.raises(CodecUnavailableError, match="nemo_toolkit.*requirements.lock.*lightning<=2.4.0"):
        NemoCodec(pretrained=HUB)


def test_unreachable_hub_fails_at_once_and_names_hub_file_and_key(tmp_path, monkeypatch):
    """Without network and without HF_HUB_OFFLINE: the hub is asked once, briefly, and never retried."""
    import socket
    import time

    from huggingface_hub.utils import close_session

    from audiolm import hub

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", f"http://127.0.0.1:{port}")
    hub.forget()
    try:
        start = time.monotonic()
        with pytest.raises(CodecUnavailableError) as err:
            NemoCodec(pretrained=HUB)
        assert time.monotonic() - start < 5
        assert_says_how_to_fix(err, "cannot be reached")
        assert huggingface_hub.constants.HF_HUB_OFFLINE is True
    finally:
        hub.forget()
        close_session()
