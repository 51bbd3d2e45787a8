"""SpeechTokenizer (Zhang et al., 2023) adapter: 16 kHz speech, 50 Hz frames, 8 RVQ levels of 1024.

    wav:   [B, 1, T]  float at 16 kHz
    codes: [B, Q, F]  long, Q = n_q <= 8, F = ceil(T / 320)

Levels: level 0 (RVQ-1, ``semantic_levels = 1``) is distilled from HuBERT and carries the content; levels 1+
add speaker and acoustic detail. ``n_q=1`` gives the semantic tokens alone; ``codes[:, :semantic_levels]`` and
``codes[:, semantic_levels:]`` split any encode. The levels are residual, so the first n levels of any encode
are the n-level encode. The ``speechtokenizer`` package orders codes [Q, B, F]; this adapter transposes to the
suite's [B, Q, F].

Batches: the encoder is not causal (reflect-padded convolutions, then a bidirectional LSTM over the whole
clip), so a clip zero-padded in a batch gets slightly different codes than the clip alone, mostly near its end.

Everything that can be missing (the package, its undeclared ``beartype`` dependency, the two files
of the pretrained model) is checked in ``__init__`` and reported as a
:class:`~audiolm.codecs.errors.CodecUnavailableError` saying exactly how to fix it.
"""

from __future__ import annotations

import importlib.util
import json
import math
import pickle
from pathlib import Path
from typing import Any

import torch

from audiolm.codecs.base import AudioCodec
from audiolm.codecs.errors import CodecUnavailableError
from audiolm.errors import ConfigError

INSTALL_COMMAND = "pip install speechtokenizer beartype"
HUB_ID = "fnlp/SpeechTokenizer"
HUB_FOLDER = "speechtokenizer_hubert_avg"
CONFIG_FILE = "config.json"
CHECKPOINT_FILE = "SpeechTokenizer.pt"


def _missing_package() -> str | None:
    if importlib.util.find_spec("speechtokenizer") is not None:
        return None
    # speechtokenizer imports beartype (through its trainer) without declaring it.
    return f"the 'speechtokenizer' package is not installed; install it with: {INSTALL_COMMAND}"


def _how_to_provide() -> str:
    return (
        f"download {CONFIG_FILE} and {CHECKPOINT_FILE} from the Hugging Face repo {HUB_ID} "
        f"(folder {HUB_FOLDER}), e.g. hf download {HUB_ID} --include '{HUB_FOLDER}/*' --local-dir DIR, "
        f"and set codec.pretrained=/path/to/folder (here DIR/{HUB_FOLDER})"
    )


def _missing_files(pretrained: str | None) -> str | None:
    how = _how_to_provide()
    if pretrained is None:
        return f"no pretrained model given (codec.pretrained is null); {how}"
    folder = Path(pretrained).expanduser()
    if not folder.is_dir():
        return f"codec.pretrained={pretrained} is not a folder; {how}"
    missing = [name for name in (CONFIG_FILE, CHECKPOINT_FILE) if not (folder / name).is_file()]
    if missing:
        return f"{folder} lacks {' and '.join(missing)}; {how}"
    return None


class SpeechTokenizerCodec(AudioCodec):
    """Pretrained SpeechTokenizer, frozen, used through its first ``n_q`` RVQ levels.

    Args:
        pretrained: folder holding ``config.json`` and ``SpeechTokenizer.pt`` (e.g. the
            ``speechtokenizer_hubert_avg`` folder of the ``fnlp/SpeechTokenizer`` Hugging Face repo).
        n_q: RVQ levels to use, 1 to the model's 8; 1 keeps only the semantic level.
    """

    #: Leading levels that carry content (level 0, distilled from HuBERT); the rest are acoustic.
    semantic_levels = 1
    batch_invariant = False  # a bidirectional LSTM sees the zero padding of shorter clips

    def __init__(self, pretrained: str | None, n_q: int = 4) -> None:
        super().__init__()
        problems = [p for p in (_missing_package(), _missing_files(pretrained)) if p]
        if problems:
            raise CodecUnavailableError(
                "SpeechTokenizer codec unavailable:\n" + "\n".join(f"  - {p}" for p in problems)
            )
        folder = Path(pretrained).expanduser().resolve()
        try:
            from speechtokenizer import SpeechTokenizer
        except ImportError as err:
            # Installed but broken: usually beartype, which it imports without declaring.
            raise CodecUnavailableError(
                f"SpeechTokenizer codec unavailable: 'import speechtokenizer' failed because "
                f"module '{err.name}' is missing ({err}); install the package with "
                f"its undeclared dependency: {INSTALL_COMMAND}"
            ) from err

        try:
            config = json.loads((folder / CONFIG_FILE).read_text())
            levels = int(config["n_q"])
            model = SpeechTokenizer.load_from_checkpoint(str(folder / CONFIG_FILE), str(folder / CHECKPOINT_FILE))
        except (OSError, ValueError, KeyError, TypeError, RuntimeError, EOFError, pickle.UnpicklingError) as err:
            raise CodecUnavailableError(
                f"codec.pretrained={folder}: loading SpeechTokenizer from its {CONFIG_FILE} "
                f"and {CHECKPOINT_FILE} failed ({type(err).__name__}: {err}); the files may "
                f"be damaged or of another model; {_how_to_provide()}"
            ) from None
        if not 1 <= n_q <= levels:
            raise ConfigError(f"codec.n_q={n_q} is out of range: this SpeechTokenizer has levels 1 to {levels}")
        self.model = model.eval().requires_grad_(False)
        self.pretrained = str(folder)
        self.sample_rate = int(config["sample_rate"])
        self.hop_length = math.prod(config["strides"])
        self.frame_rate = self.sample_rate / self.hop_length
        self.n_codebooks = int(n_q)
        self.codebook_size = int(config["codebook_size"])

    def num_frames(self, num_samples: int) -> int:
        return -(-num_samples // self.hop_length)

    @torch.no_grad()
    def _encode(self, wav: torch.Tensor) -> torch.Tensor:
        """wav: [B, 1, T] -> codes: [B, Q, ceil(T / 320)] long."""
        codes = self.model.encode(wav.to(self.device, torch.float32), n_q=self.n_codebooks)  # [Q, B, F]
        return codes.transpose(0, 1).long().contiguous()

    @torch.no_grad()
    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes: [B, Q', F] with 1 <= Q' <= Q (the first levels) -> wav: [B, 1, F * 320]."""
        return self.model.decode(codes.to(self.device, torch.long).transpose(0, 1))

    def config_dict(self) -> dict[str, Any]:
        return {"codec": type(self).__name__, "pretrained": self.pretrained, "n_q": self.n_codebooks}
