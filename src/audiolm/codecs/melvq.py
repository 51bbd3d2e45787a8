"""Mel VQ codec: a weight-free, low-frame-rate speech codec fitted on the corpus in seconds.

    encode: wav [B, 1, T] -> log-mel [B, M, F] -> residual k-means -> codes [B, Q, F]
    decode: codes [B, Q', F] (Q' <= Q) -> sum of centroids -> log-mel [B, M, F]
            -> non-negative mel inversion -> |STFT| [B, n_fft // 2 + 1, F + 1]
            -> fast Griffin-Lim -> wav [B, 1, F * hop_length]

Frame ``f`` is the STFT frame centred on sample ``f * hop_length``; a clip of T samples has
``F = ceil(T / hop_length)`` frames. Residual levels are ordered coarse to fine, so decoding only
the first Q' levels gives a coarser version of the same audio.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torchaudio.functional as AF

from audiolm.codecs.base import AudioCodec


def _nearest(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Index of the nearest centroid, x: [N, D], c: [K, D] -> [N] long.

    ``||x||^2`` is the same for every centroid, so argmin of ``||c||^2 - 2 x.c`` is enough; one
    fused matmul keeps this memory-light for N in the tens of thousands.
    """
    return torch.addmm(c.square().sum(1), x, c.T, alpha=-2).argmin(1)


def kmeans(x: torch.Tensor, k: int, iters: int, generator: torch.Generator) -> torch.Tensor:
    """Lloyd's k-means with k-means++ seeding, x: [N, D] -> centroids: [k, D].

    Deterministic for a given ``generator`` state; needs N >= k.
    """
    n = x.shape[0]
    if n < k:
        raise ValueError(f"k-means needs at least {k} frames to fit {k} centroids, got {n}")
    x_sq = x.square().sum(1)
    # k-means++: each next seed is drawn with probability proportional to its squared distance
    # from the seeds so far, which spreads the seeds over the data instead of the dense middle.
    chosen = [int(torch.randint(n, (1,), generator=generator))]
    d2 = (x_sq - 2 * x @ x[chosen[0]] + x_sq[chosen[0]]).clamp_min(0)
    for _ in range(k - 1):
        # Inverse-CDF sampling; with all distances zero (fewer distinct frames than k) the
        # threshold is 0 and the last frame is taken, a harmless duplicate seed.
        cdf = d2.cumsum(0)
        threshold = torch.rand(1, generator=generator, dtype=cdf.dtype) * cdf[-1]
        chosen.append(min(int(torch.searchsorted(cdf, threshold.to(cdf.device), right=True)), n - 1))
        d2 = torch.minimum(d2, (x_sq - 2 * x @ x[chosen[-1]] + x_sq[chosen[-1]]).clamp_min(0))
    centroids = x[chosen].clone()

    assign = None
    for _ in range(iters):
        new_assign = _nearest(x, centroids)
        if assign is not None and torch.equal(new_assign, assign):
            break
        assign = new_assign
        counts = torch.bincount(assign, minlength=k)
        sums = torch.zeros_like(centroids).index_add_(0, assign, x)
        empty = (counts == 0).nonzero().squeeze(1)
        centroids = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], centroids)
        if len(empty):
            # An empty cluster wastes a code; move it onto the worst-served frames.
            error = (x - centroids[assign]).square().sum(1)
            centroids[empty] = x[error.topk(len(empty)).indices]
    return centroids


class MelVQCodec(AudioCodec):
    """Log-mel frames quantised by residual k-means, decoded by mel inversion and Griffin-Lim.

    Args:
        sample_rate: input and output rate in Hz.
        n_fft: STFT size (also the Hann window length).
        hop_length: samples per code frame; ``frame_rate = sample_rate / hop_length``.
        n_mels: mel bands (the dimension D that k-means clusters).
        f_min, f_max: mel band range in Hz; ``f_max=None`` means ``sample_rate / 2``.
        log_floor: mel magnitudes are clamped to this before the log, which bounds the
            dynamic range the codes spend their bits on.
        n_codebooks: residual levels Q.
        codebook_size: centroids per level K.
        kmeans_iters: Lloyd iterations per level (stops earlier once assignments settle).
        max_fit_frames: frames ``fit`` reads at most; it stops reading clips after that.
        seed: seeds k-means++, so the same data and seed give the same centroids.
        inversion_iters: non-negative least-squares iterations mapping mel back to a linear
            magnitude spectrum (0 keeps the clamped pseudo-inverse).
        griffin_lim_iters: Griffin-Lim iterations.
        griffin_lim_momentum: momentum of the fast Griffin-Lim update (0 gives plain Griffin-Lim).
    """

    keeps_phase = False  # Griffin-Lim: the phase is rebuilt, not coded

    needs_fit = True

    def __init__(
        self,
        sample_rate: int = 16000,
        n_fft: int = 1024,
        hop_length: int = 320,
        n_mels: int = 80,
        f_min: float = 0.0,
        f_max: float | None = None,
        log_floor: float = 1e-5,
        n_codebooks: int = 4,
        codebook_size: int = 256,
        kmeans_iters: int = 20,
        max_fit_frames: int = 50_000,
        seed: int = 0,
        inversion_iters: int = 50,
        griffin_lim_iters: int = 32,
        griffin_lim_momentum: float = 0.99,
    ) -> None:
        super().__init__()
        if hop_length > n_fft:
            raise ValueError(f"hop_length ({hop_length}) must not exceed n_fft ({n_fft})")
        self.sample_rate = int(sample_rate)
        self.n_fft = int(n_fft)
        self.hop_length = int(hop_length)
        self.n_mels = int(n_mels)
        self.f_min = float(f_min)
        self.f_max = float(sample_rate / 2 if f_max is None else f_max)
        self.log_floor = float(log_floor)
        self.n_codebooks = int(n_codebooks)
        self.codebook_size = int(codebook_size)
        self.kmeans_iters = int(kmeans_iters)
        self.max_fit_frames = int(max_fit_frames)
        self.seed = int(seed)
        self.inversion_iters = int(inversion_iters)
        self.griffin_lim_iters = int(griffin_lim_iters)
        self.griffin_lim_momentum = float(griffin_lim_momentum)
        self.frame_rate = self.sample_rate / self.hop_length

        # Buffers follow .to(device) but stay out of state_dict: the fitted state travels through
        # fitted_state(), and everything else is rebuilt from the constructor arguments.
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)
        fbank = AF.melscale_fbanks(
            self.n_fft // 2 + 1,
            self.f_min,
            self.f_max,
            self.n_mels,
            self.sample_rate,
            norm="slaney",
            mel_scale="slaney",
        )
        self.register_buffer("mel_basis", fbank.T.contiguous(), persistent=False)  # [M, n_freq]
        self.register_buffer("mel_pinv", torch.linalg.pinv(fbank.T), persistent=False)  # [n_freq, M]
        self.register_buffer("centroids", torch.empty(0), persistent=False)  # [Q, K, M] once fitted

    # ----------------------------------------------------------------------------- features

    def log_mel(self, wav: torch.Tensor) -> torch.Tensor:
        """wav: [B, 1, T] -> log-mel: [B, M, F] with F = ceil(T / hop_length)."""
        x = wav.to(self.window.device, torch.float32).squeeze(1)
        frames = self.num_frames(x.shape[-1])
        # Zero-pad to a whole number of hops: the centred STFT then has frames + 1 frames, the
        # last centred past the end of the clip, which is dropped. Constant (not reflect) padding
        # works for clips shorter than n_fft / 2.
        x = torch.nn.functional.pad(x, (0, frames * self.hop_length - x.shape[-1]))
        spec = torch.stft(
            x, self.n_fft, self.hop_length, window=self.window, center=True, pad_mode="constant", return_complex=True
        )[..., :frames]
        return torch.log((self.mel_basis @ spec.abs()).clamp_min(self.log_floor))

    def num_frames(self, num_samples: int) -> int:
        # Integer ceil: the float formula in the base class can be off by one when
        # sample_rate / hop_length is not exact.
        return -(-num_samples // self.hop_length)

    # ----------------------------------------------------------------------------- fitting

    @torch.no_grad()
    def fit(self, wavs: Iterable[torch.Tensor]) -> None:
        """Fit the residual codebooks on mono clips wav: [1, T], reading at most ``max_fit_frames``.

        Clips are read in the order given and reading stops at the cap, so a corpus sorted by
        speaker or session should be passed shuffled.
        """
        feats, total = [], 0
        for wav in wavs:
            frames = self.log_mel(wav.reshape(1, 1, -1))[0].T  # [F, M]
            feats.append(frames[: self.max_fit_frames - total])
            total += len(feats[-1])
            if total >= self.max_fit_frames:
                break
        if total < self.codebook_size:
            raise ValueError(
                f"MelVQCodec.fit got {total} frames ({total / self.frame_rate:.1f} s of audio); "
                f"codebook_size={self.codebook_size} needs at least that many frames"
            )
        residual = torch.cat(feats)
        generator = torch.Generator().manual_seed(self.seed)  # on CPU: same draws on any device
        levels = []
        for _ in range(self.n_codebooks):
            centroids = kmeans(residual, self.codebook_size, self.kmeans_iters, generator)
            residual = residual - centroids[_nearest(residual, centroids)]
            levels.append(centroids)
        self.centroids = torch.stack(levels)

    @property
    def is_fitted(self) -> bool:
        return self.centroids.numel() > 0

    def fitted_state(self) -> dict[str, torch.Tensor]:
        return {"centroids": self.centroids.detach().cpu().clone()} if self.is_fitted else {}

    def load_fitted_state(self, state: dict[str, torch.Tensor]) -> None:
        expected = (self.n_codebooks, self.codebook_size, self.n_mels)
        centroids = state.get("centroids")
        if set(state) != {"centroids"} or tuple(centroids.shape) != expected:
            shapes = {k: tuple(v.shape) for k, v in state.items()}
            raise ValueError(f"MelVQCodec expects {{'centroids': {expected}}} (Q, K, n_mels), got {shapes}")
        self.centroids = centroids.to(self.window.device, torch.float32)

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise RuntimeError(
                "MelVQCodec must be fitted before it can encode or decode: call fit(wavs) or "
                "load_fitted_state(state). The token store fits it on the training corpus "
                "when it tokenises the data."
            )

    # ----------------------------------------------------------------------------- coding

    @torch.no_grad()
    def _encode(self, wav: torch.Tensor) -> torch.Tensor:
        """wav: [B, 1, T] -> codes: [B, Q, F] long in [0, codebook_size)."""
        self._check_fitted()
        feats = self.log_mel(wav)  # [B, M, F]
        batch, _, frames = feats.shape
        residual = feats.transpose(1, 2).reshape(batch * frames, self.n_mels)
        codes = []
        for centroids in self.centroids:  # [K, M] per level
            idx = _nearest(residual, centroids)
            residual = residual - centroids[idx]
            codes.append(idx)
        return torch.stack(codes, 1).reshape(batch, frames, self.n_codebooks).transpose(1, 2).contiguous()

    def dequantize(self, codes: torch.Tensor) -> torch.Tensor:
        """codes: [B, Q', F] with Q' <= Q -> log-mel: [B, M, F], the sum of the first Q' levels."""
        self._check_fitted()
        levels = codes.shape[1]
        if not 1 <= levels <= self.n_codebooks:
            raise ValueError(f"codes have {levels} levels; this codec decodes 1 to {self.n_codebooks}")
        codes = codes.to(self.centroids.device)
        # centroids[q][codes[:, q]]: [B, F, M] per level, summed over the levels.
        feats = sum(self.centroids[q][codes[:, q]] for q in range(levels))
        return feats.transpose(1, 2)

    @torch.no_grad()
    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes: [B, Q', F] with Q' <= Q -> wav: [B, 1, F * hop_length]."""
        mel = self.dequantize(codes).exp()  # [B, M, F]
        # Griffin-Lim needs F + 1 magnitude frames for F * hop samples (the centred STFT of that
        # length has one frame past the end); repeat the last frame for it.
        mel = torch.cat([mel, mel[..., -1:]], dim=-1)
        magnitude = self._invert_mel(mel)
        return self._griffin_lim(magnitude, mel.shape[-1] - 1).unsqueeze(1)

    def _invert_mel(self, mel: torch.Tensor) -> torch.Tensor:
        """Mel magnitude [B, M, F] -> linear magnitude [B, n_freq, F], non-negative.

        Starts from the clamped pseudo-inverse and refines it with multiplicative NNLS updates
        (x <- x * A^T b / A^T A x), which keep x >= 0 and fit the mel bands better than clamping.
        """
        x = (self.mel_pinv @ mel).clamp_min(self.log_floor)
        target = self.mel_basis.T @ mel  # A^T b
        for _ in range(self.inversion_iters):
            x = x * target / (self.mel_basis.T @ (self.mel_basis @ x)).clamp_min(1e-12)
        return x

    def _griffin_lim(self, magnitude: torch.Tensor, frames: int) -> torch.Tensor:
        """Fast Griffin-Lim (Perraudin et al., 2013): magnitude [B, n_freq, F + 1] -> wav [B, F * hop].

        Written out rather than torchaudio's ``griffinlim``, which re-analyses with reflect padding
        and so fails on clips shorter than n_fft / 2. Starts from zero phase: decoding is deterministic.
        """
        length = frames * self.hop_length
        stft_args = dict(n_fft=self.n_fft, hop_length=self.hop_length, window=self.window, center=True)
        spec = magnitude.to(torch.complex64)
        previous = torch.zeros_like(spec)
        for _ in range(self.griffin_lim_iters):
            wav = torch.istft(spec, length=length, **stft_args)
            rebuilt = torch.stft(wav, pad_mode="constant", return_complex=True, **stft_args)
            accelerated = rebuilt + self.griffin_lim_momentum * (rebuilt - previous)
            previous = rebuilt
            spec = magnitude * accelerated / accelerated.abs().clamp_min(1e-8)
        return torch.istft(spec, length=length, **stft_args)

    def config_dict(self) -> dict[str, Any]:
        # Decode-only settings (inversion and Griffin-Lim iterations) do not change the codes, so
        # they stay out: tuning them must not re-tokenise the corpus.
        keys = (
            "sample_rate",
            "n_fft",
            "hop_length",
            "n_mels",
            "f_min",
            "f_max",
            "log_floor",
            "n_codebooks",
            "codebook_size",
            "kmeans_iters",
            "max_fit_frames",
            "seed",
        )
        return {"codec": type(self).__name__, **{k: getattr(self, k) for k in keys}}
