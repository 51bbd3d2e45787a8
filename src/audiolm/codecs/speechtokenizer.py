"""SpeechTokenizer (Zhang et al., 2023) adapter: 16 kHz speech, 50 Hz frames, 8 RVQ levels of 1024.

    wav:   [B, 1, T]  float at 16 kHz
    codes: [B, Q, F]  long, Q = n_q <= 8, F = ceil(T / 320)

Level 0 is distilled from HuBERT (content); levels 1+ add speaker and acoustic detail. The
``speechtokenizer`` package orders codes [Q, B, F]; this adapter transposes to the suite's [B, Q, F].

Everything that can be missing (the package, its undeclared ``beartype`` dependency, the two files
of the pretrained model) is checked in ``__init__`` and reported as a
:class:`~audiolm.codecs.errors.CodecUnavailableError` saying exactly how to fix it.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from typing import Any

import torch

from audiolm.codecs.base import AudioCodec
from audiolm.codecs.errors import CodecUnavailableError

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


def _missing_files(pretrained: str | None) -> str | None:
    how = (f"download {CONFIG_FILE} and {CHECKPOINT_FILE} from the Hugging Face repo {HUB_ID} "
           f"(folder {HUB_FOLDER}), e.g. hf download {HUB_ID} --include '{HUB_FOLDER}/*' --local-dir DIR, "
           f"and set codec.pretrained=/path/to/folder (here DIR/{HUB_FOLDER})")
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
        n_q: RVQ levels to use, 1 to the model's 8.
    """

    def __init__(self, pretrained: str | None, n_q: int = 4) -> None:
        super().__init__()
        problems = [p for p in (_missing_package(), _missing_files(pretrained)) if p]
        if problems:
            raise CodecUnavailableError("SpeechTokenizer codec unavailable:\n" + "\n".join(f"  - {p}" for p in problems))
        folder = Path(pretrained).expanduser().resolve()
        try:
            from speechtokenizer import SpeechTokenizer
        except ImportError as err:
            # Installed but broken: usually beartype, which it imports without declaring.
            raise CodecUnavailableError(f"SpeechTokenizer codec unavailable: 'import speechtokenizer' failed because "
                                        f"module '{err.name}' is missing ({err}); install the package with "
                                        f"its undeclared dependency: {INSTALL_COMMAND}") from err

        with open(folder / CONFIG_FILE) as f:
            config = json.load(f)
        if not 1 <= n_q <= config["n_q"]:
            raise ValueError(f"n_q must be in [1, {config['n_q']}] for this SpeechTokenizer, got {n_q}")
        model = SpeechTokenizer.load_from_checkpoint(str(folder / CONFIG_FILE), str(folder / CHECKPOINT_FILE))
        self.model = model.eval().requires_grad_(False)
        self.pretrained = str(folder)
        self.sample_rate = int(config["sample_rate"])
        self.frame_rate = self.sample_rate / math.prod(config["strides"])
        self.n_codebooks = int(n_q)
        self.codebook_size = int(config["codebook_size"])

    def _device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """wav: [B, 1, T] -> codes: [B, Q, F] long."""
        codes = self.model.encode(wav.to(self._device(), torch.float32), n_q=self.n_codebooks)  # [Q, B, F]
        return codes.transpose(0, 1).long().contiguous()

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes: [B, Q', F] with Q' <= Q (the first levels) -> wav: [B, 1, F * 320]."""
        return self.model.decode(codes.to(self._device()).transpose(0, 1))

    def config_dict(self) -> dict[str, Any]:
        return {"codec": type(self).__name__, "pretrained": self.pretrained, "n_q": self.n_codebooks}
