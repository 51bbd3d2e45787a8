"""The one interface every audio codec implements.

A codec turns a waveform into a grid of discrete codes and back:

    wav:   [B, 1, T]  float, mono, at ``sample_rate``
    codes: [B, Q, F]  long, Q codebooks (levels) of ``codebook_size`` entries, F frames at ``frame_rate``

Pretrained codecs load their weights in ``__init__``. Weight-free codecs that are fitted on
data (``needs_fit``) learn their state in ``fit`` and expose it through ``fitted_state`` so the
token store and checkpoints can carry it.
"""

from __future__ import annotations

import itertools
import math
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn


def seconds_to_frames(seconds: float, frame_rate: float) -> int:
    """The one rounding of a duration into code frames everywhere: the nearest whole frame, at least one."""
    return max(int(round(seconds * frame_rate)), 1)


class AudioCodec(nn.Module, ABC):
    sample_rate: int
    frame_rate: float
    n_codebooks: int
    codebook_size: int
    #: True when the codec must see data (``fit``) before it can encode.
    needs_fit: bool = False
    #: True when the levels are residual (RVQ): the first Q' levels alone decode to a coarser
    #: version, so ``decode`` takes codes [B, Q', F] for any Q' <= Q. False where each codebook
    #: quantises its own part of the latent (FSQ groups): those decode only all Q levels.
    residual: bool = True
    #: True when a clip's codes do not depend on the rest of its batch (zero padding to the longest
    #: clip changes nothing). False for encoders that see the whole padded clip (SpeechTokenizer's
    #: bidirectional LSTM): the tokenizer then encodes them one clip at a time.
    batch_invariant: bool = True
    #: False when ``decode`` rebuilds the phase (Griffin-Lim) instead of the waveform: the result then differs
    #: from the input sample by sample however good it sounds, and waveform metrics (SI-SDR) mean nothing.
    keeps_phase: bool = True
    #: Leading levels that carry content (distilled from a speech model); 0 for purely acoustic codecs.
    semantic_levels: int = 0

    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """wav: [B, 1, T] -> codes: [B, Q, F] (long). Checks the input (:meth:`check_wav`), then ``_encode``."""
        self.check_wav(wav)
        return self._encode(wav)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes: [B, Q, F] (or the first Q' levels when ``residual``) -> wav: [B, 1, T]. Checks the input
        (:meth:`check_codes`), then ``_decode``."""
        self.check_codes(codes)
        return self._decode(codes)

    @abstractmethod
    def _encode(self, wav: torch.Tensor) -> torch.Tensor:
        """wav: [B, 1, T], already checked -> codes: [B, Q, F] (long)."""

    @abstractmethod
    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes: [B, Q', F], already checked (shape and range) -> wav: [B, 1, T]."""

    def check_wav(self, wav: torch.Tensor) -> None:
        """Refuse (ValueError) anything but mono audio [B, 1, T]."""
        if wav.ndim != 3 or wav.shape[1] != 1:
            raise ValueError(f"{type(self).__name__}.encode takes mono wav [B, 1, T], got shape {list(wav.shape)}")

    def check_codes(self, codes: torch.Tensor) -> None:
        """Refuse (ValueError) codes that are not [B, Q', F] with the levels this codec decodes (the first
        1 <= Q' <= Q when ``residual``, else all Q), or that lie outside [0, codebook_size)."""
        name, levels = type(self).__name__, self.n_codebooks
        if self.residual:
            if codes.ndim != 3 or not 1 <= codes.shape[1] <= levels:
                raise ValueError(
                    f"{name}.decode takes codes [B, Q', F] with 1 <= Q' <= {levels}, got shape {list(codes.shape)}"
                )
        elif codes.ndim != 3 or codes.shape[1] != levels:
            raise ValueError(
                f"{name}.decode takes codes [B, {levels}, F] (its codebooks are not residual, e.g. FSQ "
                f"groups: each quantises its own part of the latent, so all are needed), got shape "
                f"{list(codes.shape)}"
            )
        if codes.numel() and not (int(codes.min()) >= 0 and int(codes.max()) < self.codebook_size):
            raise ValueError(
                f"codes must lie in [0, {self.codebook_size}), got [{int(codes.min())}, {int(codes.max())}]"
            )

    @abstractmethod
    def config_dict(self) -> dict[str, Any]:
        """Everything that determines the codes; the token store is keyed by its hash."""

    def fit(self, wavs: Iterable[torch.Tensor]) -> None:
        """Learn the codec's state from mono clips ``[1, T]``; codecs with weights need nothing."""

    def fitted_state(self) -> dict[str, torch.Tensor]:
        """State learned by ``fit`` (or loaded); empty until then, and always for codecs that need no fitting.

        A non-empty state means the codec is ready to encode: the token store then keeps it instead
        of fitting again (this is how a checkpoint's codec state reaches a new corpus)."""
        return {}

    def load_fitted_state(self, state: dict[str, torch.Tensor]) -> None:
        """Restore what ``fitted_state`` returned."""
        if state:
            raise ValueError(f"{type(self).__name__} takes no fitted state, got keys {sorted(state)}")

    def seconds_to_frames(self, seconds: float) -> int:
        """Code frames in ``seconds`` (see the module function of that name)."""
        return seconds_to_frames(seconds, self.frame_rate)

    def num_frames(self, num_samples: int) -> int:
        """Number of code frames for a clip of ``num_samples`` samples."""
        return math.ceil(num_samples * self.frame_rate / self.sample_rate)

    @property
    def device(self) -> torch.device:
        """Where the codec's weights live (CPU for codecs without any)."""
        tensor = next(itertools.chain(self.parameters(), self.buffers()), None)
        return tensor.device if tensor is not None else torch.device("cpu")
