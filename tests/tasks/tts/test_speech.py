"""What both TTS models share: one inference call (SpeechRequest in, AudioResult out, from a reference
recording or from codes), prompt audio checks, and the phoneme vocabulary that travels with the weights."""

from __future__ import annotations

import functools
import logging

import numpy as np
import pytest
import soundfile as sf
import torch

from audiolm.backbones.llama import LlamaBackbone
from audiolm.codecs.melvq import MelVQCodec
from audiolm.errors import DataError, MissingFileError
from audiolm.generation.sampling import Sampler
from audiolm.tasks.inference import Audio, AudioResult, SpeechRequest
from audiolm.tasks.tts.parallel.decoder import AudioDecoder
from audiolm.tasks.tts.parallel.encoders import AudioEncoder
from audiolm.tasks.tts.parallel.model import ParallelTTS
from audiolm.tasks.tts.parallel.modes.nar import MaskedMode
from audiolm.tasks.tts.prompt import read_prompt
from audiolm.tasks.tts.speech import SpeechModel
from audiolm.tasks.tts.valle.model import VallE
from audiolm.text.frontend import TextFrontend

H, Q, K = 32, 3, 16
FRONTEND = TextFrontend("en-us")


def codec() -> MelVQCodec:
    torch.manual_seed(0)
    c = MelVQCodec(n_codebooks=Q, codebook_size=K)
    c.load_fitted_state({"centroids": torch.randn(Q, K, c.n_mels)})
    return c


def backbone() -> LlamaBackbone:
    return LlamaBackbone(hidden_size=H, num_layers=2, num_heads=2, intermediate_size=64)


MODELS = {
    "valle": lambda: VallE(backbone(), codec(), FRONTEND, Sampler(temperature=1.0), prompt_seconds=0.1),
    "parallel": lambda: ParallelTTS(
        backbone(),
        codec(),
        FRONTEND,
        functools.partial(MaskedMode, steps=2),
        AudioEncoder,
        AudioDecoder,
        Sampler(temperature=1.0),
        prompt_seconds=0.1,
    ),
}


def voice(seconds: float = 0.5, rate: int = 22050) -> Audio:
    t = torch.arange(int(seconds * rate)) / rate
    return Audio((0.3 * torch.sin(2 * torch.pi * 220 * t))[None], rate)


@pytest.mark.parametrize("name", MODELS)
def test_a_speech_request_with_a_reference_recording_gives_audio(name):
    model: SpeechModel = MODELS[name]()
    request = SpeechRequest("Hello there. How are you?", reference=voice(), max_seconds=0.1, seed=3)
    result = model.generate(request)
    assert isinstance(result, AudioResult) and len(result.audio) == len(result.codes) == 1
    audio, codes = result.audio[0], result.codes[0]
    assert audio.sample_rate == model.codec.sample_rate and audio.seconds > 0 and codes.shape[0] == Q
    assert torch.equal(model.generate(request).codes[0], codes), "the seed makes a request repeatable"
    from_codes = model.generate(
        SpeechRequest("Hello there. How are you?", model.encode_prompt(voice()), max_seconds=0.1, seed=3)
    )
    assert torch.equal(from_codes.codes[0], codes), "a reference as codes speaks as the recording"


def test_another_language_of_the_same_vocabulary_is_spoken():
    model = MODELS["valle"]()
    result = model.generate(SpeechRequest("Bonjour.", max_seconds=0.1, language="fr-fr"))
    assert result.audio[0].seconds > 0 and model.text.language == "en-us"


def test_a_checkpoint_of_another_phoneme_vocabulary_is_refused():
    model = MODELS["valle"]()
    state = model.extra_state()
    assert state["phoneme_vocab"] == FRONTEND.vocab.to_json() and "codec_state" in state
    with pytest.raises(DataError, match="another phoneme vocabulary"):
        model.load_extra_state({**state, "phoneme_vocab": TextFrontend("en-us", "abc").vocab.to_json()})


# -- prompt audio ----------------------------------------------------------------------------
def write(path, data, rate):
    sf.write(path, data, rate)
    return path


def prompt_codes(model: SpeechModel, path) -> torch.Tensor:
    return model.encode_prompt(read_prompt(path, model.codec.sample_rate))


def test_prompt_audio_of_any_rate_and_channel_count_is_converted(tmp_path):
    model = MODELS["valle"]()
    t = np.arange(48000) / 48000
    stereo = np.stack([0.3 * np.sin(2 * np.pi * 220 * t), 0.2 * np.sin(2 * np.pi * 330 * t)], axis=1)
    codes = prompt_codes(model, write(tmp_path / "stereo48k.wav", stereo, 48000))
    assert codes.shape == (Q, model.prompt_frames) and codes.dtype == torch.long


def test_bad_prompt_audio_is_a_clear_error_or_a_warning(tmp_path, caplog):
    model = MODELS["valle"]()
    with pytest.raises(DataError, match="silent"):
        prompt_codes(model, write(tmp_path / "silent.wav", np.zeros(16000), 16000))
    with pytest.raises(DataError, match="shorter than one codec frame"):
        prompt_codes(model, write(tmp_path / "tiny.wav", 0.3 * np.ones(50), 16000))
    with pytest.raises(MissingFileError, match="not found"):
        prompt_codes(model, tmp_path / "missing.wav")
    with caplog.at_level(logging.WARNING):
        codes = prompt_codes(model, write(tmp_path / "short.wav", 0.3 * np.sin(np.arange(4000) / 5), 16000))
    assert "only 0.25 s long" in caplog.text and codes.shape[0] == Q
