"""Codecs: mu-law against torchaudio, the mel VQ codec's contract and quality, SpeechTokenizer's errors."""

from __future__ import annotations

import itertools
import shutil
import subprocess
import sys

import pytest
import torch
import torchaudio.functional as AF

from audiolm.audio.io import load_audio
from audiolm.codecs.errors import CodecUnavailableError
from audiolm.codecs.melvq import MelVQCodec
from audiolm.codecs.mulaw import MuLawCodec
from audiolm.codecs.speechtokenizer import SpeechTokenizerCodec

SR = 16000
TRAIN_SENTENCES = [
    ("en-us", "The quick brown fox jumps over the lazy dog while the farmer watches from the porch."),
    ("en+f3", "A journey of a thousand miles begins with a single step, and then another one."),
    ("en-gb+m3", "She sells sea shells by the sea shore, and the shells she sells are surely sea shells."),
    ("en-us+f2", "Peter Piper picked a peck of pickled peppers from the garden behind the old house."),
    ("en-us", "Audio language models predict the next token in a stream of discrete acoustic codes."),
    ("en+f3", "Please call Stella and ask her to bring these things with her from the store."),
    ("en-gb+m3", "Six spoons of fresh snow peas, five thick slabs of blue cheese, and a snack for Bob."),
    ("en-us+f2", "When the sunlight strikes raindrops in the air, they act as a prism and form a rainbow."),
]
HELD_OUT = ("en-us", "How much wood would a woodchuck chuck if a woodchuck could chuck wood all day long?")


# ----------------------------------------------------------------------------------- fixtures


def synthetic_speechlike(num_samples: int, seed: int) -> torch.Tensor:
    """A gliding harmonic tone under a syllable-rate envelope plus a little noise -> wav: [1, T]."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(num_samples) / SR
    f0 = 100 + 80 * torch.rand(1, generator=g) + 30 * torch.sin(2 * torch.pi * 0.7 * t)
    phase = 2 * torch.pi * torch.cumsum(f0, 0) / SR
    harmonics = sum(torch.sin(k * phase) / k for k in range(1, 20))
    envelope = 0.5 * (1 + torch.sin(2 * torch.pi * 4 * t + 6 * torch.rand(1, generator=g))).clamp_min(0.05)
    return (0.1 * envelope * harmonics + 0.003 * torch.randn(t.shape, generator=g))[None]


@pytest.fixture(scope="module")
def small_codec() -> MelVQCodec:
    """A quickly fitted codec (Q=3, K=32) on synthetic audio, for contract tests."""
    codec = MelVQCodec(n_codebooks=3, codebook_size=32, kmeans_iters=10)
    codec.fit(synthetic_speechlike(3 * SR, seed) for seed in range(3))
    return codec


def espeak(tmp_dir, voice: str, text: str, name: str) -> torch.Tensor:
    path = tmp_dir / f"{name}.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True, capture_output=True)
    return load_audio(path, SR)


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> tuple[list[torch.Tensor], torch.Tensor]:
    """(training clips, held-out clip) of espeak-ng speech at 16 kHz, each wav: [1, T]."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    tmp_dir = tmp_path_factory.mktemp("espeak")
    train = [espeak(tmp_dir, voice, text, f"train{i}") for i, (voice, text) in enumerate(TRAIN_SENTENCES)]
    return train, espeak(tmp_dir, *HELD_OUT, "held_out")


@pytest.fixture(scope="module")
def speech_codec(speech) -> MelVQCodec:
    """The default codec (Q=4, K=256) fitted on the espeak training clips."""
    codec = MelVQCodec()
    codec.fit(speech[0])
    return codec


def log_mel_distance(codec: MelVQCodec, wav: torch.Tensor, decoded: torch.Tensor) -> float:
    """Mean absolute natural-log mel difference between wav [1, 1, T] and its decoding."""
    reference = codec.log_mel(wav)
    return (codec.log_mel(decoded)[..., : reference.shape[-1]] - reference).abs().mean().item()


# ----------------------------------------------------------------------------------- mu-law


@pytest.mark.parametrize("bits", [8, 4])
def test_mulaw_matches_torchaudio(bits):
    codec = MuLawCodec(sample_rate=SR, bits=bits)
    wav = torch.rand(3, 1, 4000, generator=torch.Generator().manual_seed(0)) * 2 - 1
    wav[0, 0, :5] = torch.tensor([-1.0, 1.0, 0.0, 1e-7, -1e-7])
    codes = codec.encode(wav)
    assert codes.shape == (3, 1, 4000) and codes.dtype == torch.long
    assert torch.equal(codes, AF.mu_law_encoding(wav, 2**bits))
    torch.testing.assert_close(codec.decode(codes), AF.mu_law_decoding(codes, 2**bits), atol=1e-6, rtol=0)


def test_mulaw_contract():
    codec = MuLawCodec()
    assert (codec.n_codebooks, codec.codebook_size, codec.frame_rate) == (1, 256, 16000.0)
    assert codec.num_frames(12345) == 12345
    codes = codec.encode(torch.tensor([[[-3.0, -1.0, 0.0, 1.0, 3.0]]]))  # loud input is clipped
    assert codes.min() == 0 and codes.max() == 255
    assert codec.config_dict() == {"codec": "MuLawCodec", "sample_rate": 16000, "bits": 8}


# ----------------------------------------------------------------------------------- mel VQ: contract


def test_melvq_must_be_fitted_first():
    codec = MelVQCodec()
    with pytest.raises(RuntimeError, match="must be fitted.*token store"):
        codec.encode(torch.zeros(1, 1, SR))
    with pytest.raises(RuntimeError, match="must be fitted"):
        codec.decode(torch.zeros(1, 4, 10, dtype=torch.long))


@pytest.mark.parametrize("num_samples", [SR, SR + 1, 320, 100, 3 * 320 - 1])
def test_melvq_shapes(small_codec, num_samples):
    wav = torch.cat([synthetic_speechlike(num_samples, seed) for seed in (7, 8)])[:, None]  # [2, 1, T]
    codes = small_codec.encode(wav)
    frames = small_codec.num_frames(num_samples)
    assert frames == -(-num_samples // 320)
    assert codes.shape == (2, 3, frames) and codes.dtype == torch.long
    assert codes.min() >= 0 and codes.max() < small_codec.codebook_size
    assert torch.equal(small_codec.encode(wav[1:]), codes[1:])  # batching does not mix clips
    decoded = small_codec.decode(codes)
    assert decoded.shape == (2, 1, frames * 320) and decoded.dtype == torch.float32
    assert torch.isfinite(decoded).all()
    assert small_codec.decode(codes[:, :1]).shape == decoded.shape  # fewer levels, same length


def test_melvq_rejects_too_many_levels(small_codec):
    with pytest.raises(ValueError, match=r"1 <= Q' <= 3"):
        small_codec.decode(torch.zeros(1, 4, 5, dtype=torch.long))


def test_melvq_fit_is_deterministic_and_seeded():
    clips = [synthetic_speechlike(2 * SR, seed) for seed in range(2)]

    def fitted(seed: int) -> torch.Tensor:
        codec = MelVQCodec(n_codebooks=2, codebook_size=16, seed=seed)
        codec.fit(clips)
        return codec.fitted_state()["centroids"]

    first = fitted(0)
    assert first.shape == (2, 16, 80)
    assert torch.equal(first, fitted(0))
    assert not torch.equal(first, fitted(1))


def test_melvq_fitted_state_round_trip(small_codec):
    fresh = MelVQCodec(**{k: v for k, v in small_codec.config_dict().items() if k != "codec"})
    fresh.load_fitted_state(small_codec.fitted_state())
    wav = synthetic_speechlike(3 * SR // 2, seed=11)[None]
    codes = small_codec.encode(wav)
    assert torch.equal(fresh.encode(wav), codes)
    assert torch.equal(fresh.decode(codes), small_codec.decode(codes))
    with pytest.raises(ValueError, match="centroids"):
        MelVQCodec().load_fitted_state(small_codec.fitted_state())  # Q=4, K=256 expected


def test_melvq_fit_reads_at_most_max_fit_frames():
    consumed = []

    def clips():
        for seed in range(10):
            consumed.append(seed)
            yield synthetic_speechlike(SR, seed)  # 50 frames each

    codec = MelVQCodec(n_codebooks=1, codebook_size=8, max_fit_frames=120)
    codec.fit(clips())
    assert consumed == [0, 1, 2]
    with pytest.raises(ValueError, match="needs at least"):
        MelVQCodec(codebook_size=256).fit([synthetic_speechlike(SR, 0)])


# ----------------------------------------------------------------------------------- mel VQ: quality


def test_melvq_more_levels_reconstruct_better(speech, speech_codec):
    wav = speech[1][None]
    codes = speech_codec.encode(wav)
    distances = [log_mel_distance(speech_codec, wav, speech_codec.decode(codes[:, :q])) for q in range(1, 5)]
    assert all(a > b for a, b in itertools.pairwise(distances)), distances


def test_melvq_decoded_speech_resembles_original(speech, speech_codec):
    wav = speech[1][None]
    reference = speech_codec.log_mel(wav).flatten()
    decoded = speech_codec.decode(speech_codec.encode(wav))[..., : wav.shape[-1]]
    noise = torch.randn(wav.shape, generator=torch.Generator().manual_seed(0)) * wav.std()

    def corr(other: torch.Tensor) -> float:
        return torch.corrcoef(torch.stack([reference, speech_codec.log_mel(other).flatten()]))[0, 1].item()

    assert corr(decoded) > 0.85
    assert corr(decoded) > corr(noise) + 0.5


# ----------------------------------------------------------------------------------- SpeechTokenizer


def test_speechtokenizer_missing_package(tmp_path, monkeypatch):
    for name in ("config.json", "SpeechTokenizer.pt"):
        (tmp_path / name).write_text("{}")
    monkeypatch.setitem(sys.modules, "speechtokenizer", None)  # as if not installed
    with pytest.raises(CodecUnavailableError) as err:
        SpeechTokenizerCodec(str(tmp_path))
    assert "pip install speechtokenizer beartype" in str(err.value)
    assert "codec.pretrained" not in str(err.value)  # the files are there


def test_speechtokenizer_missing_beartype(tmp_path, monkeypatch):
    """Installed without its undeclared dependency: importing it fails on beartype."""
    package = tmp_path / "site" / "speechtokenizer"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("from beartype import beartype\n")
    model = tmp_path / "model"
    model.mkdir()
    for name in ("config.json", "SpeechTokenizer.pt"):
        (model / name).write_text("{}")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "speechtokenizer", raising=False)
    monkeypatch.setitem(sys.modules, "beartype", None)
    with pytest.raises(CodecUnavailableError, match="'beartype' is missing.*pip install speechtokenizer beartype"):
        SpeechTokenizerCodec(str(model))


@pytest.mark.parametrize("files", [None, [], ["config.json"]])
def test_speechtokenizer_missing_weights(tmp_path, files):
    if files is not None:
        for name in files:
            (tmp_path / name).write_text("{}")
    with pytest.raises(CodecUnavailableError) as err:
        SpeechTokenizerCodec(None if files is None else str(tmp_path))
    message = str(err.value)
    for expected in (
        "fnlp/SpeechTokenizer",
        "speechtokenizer_hubert_avg",
        "config.json",
        "SpeechTokenizer.pt",
        "codec.pretrained=/path/to/folder",
    ):
        assert expected in message


def test_every_codec_checks_its_input_in_the_base_class():
    """AudioCodec.encode/decode check shapes and code ranges once, for every codec, before _encode/_decode."""
    codec = MuLawCodec(bits=4)
    with pytest.raises(ValueError, match=r"MuLawCodec.encode takes mono wav \[B, 1, T\], got shape \[1, 2, 5\]"):
        codec.encode(torch.zeros(1, 2, 5))
    with pytest.raises(ValueError, match=r"MuLawCodec.decode takes codes \[B, Q', F\] with 1 <= Q' <= 1"):
        codec.decode(torch.zeros(1, 2, 5, dtype=torch.long))
    with pytest.raises(ValueError, match=r"codes must lie in \[0, 16\), got \[0, 16\]"):
        codec.decode(torch.tensor([[[0, 16]]]))
