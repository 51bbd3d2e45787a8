"""Spectrograms for the page: a clip's log-mel image, with the end of a continued prompt marked."""

from __future__ import annotations

import numpy as np
import torch

from audiolm.tasks.inference import Audio

N_MELS = 80


def spectrogram(audio: Audio, title: str, prompt_seconds: float = 0.0) -> np.ndarray:
    """The log-mel spectrogram of ``audio`` as an RGB image [H, W, 3] (uint8); a dashed line at
    ``prompt_seconds`` (when > 0) separates the prompt from what the model generated."""
    import matplotlib

    matplotlib.use("Agg")  # images only; servers have no display
    import matplotlib.pyplot as plt
    import torchaudio.transforms as T

    mel = T.MelSpectrogram(audio.sample_rate, n_fft=1024, hop_length=256, n_mels=N_MELS)(audio.wav.float().cpu())[0]
    fig, ax = plt.subplots(figsize=(8, 2.6), constrained_layout=True)
    ax.imshow(
        torch.log(mel + 1e-6).numpy(),
        origin="lower",
        aspect="auto",
        cmap="magma",
        extent=(0, audio.seconds, 0, N_MELS),
    )
    if prompt_seconds > 0:
        ax.axvline(prompt_seconds, color="cyan", linestyle="--", linewidth=2)
        ax.text(prompt_seconds, N_MELS * 0.92, " generated →", color="cyan", fontsize=9)
        ax.text(prompt_seconds, N_MELS * 0.92, "← prompt ", color="cyan", fontsize=9, ha="right")
    ax.set(xlabel="seconds", ylabel="mel bin", title=title)
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return image
