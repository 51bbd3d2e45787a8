"""Samples heard during training: every few validations the task writes its eval samples of fixed held-out
items, judged, and they go to every logger.

"Watch the samples, not val/nll" (the MarcRandBot seed): a falling loss can still sound like noise.
At a validation whose step is a multiple of ``every_n_steps``, the callback calls the task's own
``write_samples`` (the same samples and judges as eval.py, fewer of them) into
``<run>/samples/step_<N>/``, then:

- logs each WAV as audio and its mel spectrogram as an image to TensorBoard and W&B (offline too);
- writes the spectrogram PNG beside the WAV, for the CSV logger and for people;
- logs the judges' scores as ``val/judge/<name>`` metrics, which ``ModelCheckpoint`` and early stopping can monitor.

It stays cheap: a round is skipped (and says so) while the time spent on samples exceeds ``budget`` of
the training time so far (10% by default).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from audiolm.tasks.inference import Audio

log = logging.getLogger("audiolm")


class SampleLogger(L.Callback):
    """Args:
    settings: the run's ``eval`` block (what ``write_samples`` takes; ``out_dir`` is ignored).
    every_n_steps: sample at validations whose step is a multiple of this.
    n_samples: samples of each kind per round (fewer than eval's, to stay cheap).
    budget: the largest share of training time samples may take.
    """

    def __init__(self, settings: dict, every_n_steps: int = 110, n_samples: int = 2, budget: float = 0.1):
        if every_n_steps < 1 or n_samples < 1 or not 0 < budget <= 1:
            raise ValueError(
                f"callbacks.samples: every_n_steps and n_samples must be >= 1 and budget in (0, 1], got "
                f"{every_n_steps}, {n_samples}, {budget}"
            )
        self.settings = {k: v for k, v in dict(settings).items() if k != "out_dir"}
        self.settings["n_samples"] = n_samples
        self.every_n_steps, self.budget = every_n_steps, budget
        self.spent, self.started = 0.0, None

    def on_train_start(self, trainer: L.Trainer, task: L.LightningModule) -> None:
        self.started = time.perf_counter()

    def on_validation_end(self, trainer: L.Trainer, task: L.LightningModule) -> None:
        step = trainer.global_step
        if trainer.sanity_checking or not trainer.is_global_zero or step == 0 or step % self.every_n_steps:
            return
        trained = time.perf_counter() - (self.started or time.perf_counter()) - self.spent
        if self.spent > self.budget * trained:
            log.info(
                "samples at step %d skipped: they took %.0f s of %.0f s training (callbacks.samples.budget=%g)",
                step,
                self.spent,
                trained,
                self.budget,
            )
            return
        start = time.perf_counter()
        out = Path(trainer.default_root_dir) / "samples" / f"step_{step:06d}"
        was_training = task.training
        # Samples draw random numbers; the training run must not see fewer or other ones for having listened.
        devices = [task.device] if task.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            samples = task.write_samples(trainer.datamodule, out, **self.settings)
        task.train(was_training)
        self._log(trainer, samples, out, step)
        self.spent += time.perf_counter() - start
        log.info("samples at step %d: %s (%.1f s)", step, out, time.perf_counter() - start)

    def _log(self, trainer: L.Trainer, samples: Any, out: Path, step: int) -> None:
        metrics = {f"val/judge/{k.split('/', 1)[-1]}": float(v) for k, v in samples.metrics.items()}
        for name, value in metrics.items():
            trainer.callback_metrics[name] = torch.tensor(value)  # what ModelCheckpoint / EarlyStopping read
        for logger in trainer.loggers:
            if metrics:
                logger.log_metrics(metrics, step=step)
        for row in samples.rows:
            wav_path = out / row.get("file", "")
            if wav_path.suffix != ".wav" or not wav_path.is_file():
                continue
            audio = Audio.load(wav_path, _rate(wav_path))
            png = mel_png(audio, wav_path.with_suffix(".png"))
            tag = f"samples/{wav_path.stem}"
            for logger in trainer.loggers:
                _send(logger, tag, audio, png, step)


def _rate(path: Path) -> int:
    import soundfile as sf

    return sf.info(str(path)).samplerate


def mel_png(audio: Audio, path: Path) -> Path:
    """The clip's log-mel spectrogram as a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torchaudio.transforms as T

    mel = T.MelSpectrogram(audio.sample_rate, n_fft=1024, hop_length=256, n_mels=80)(audio.wav.float())[0]
    fig, ax = plt.subplots(figsize=(8, 2.5), constrained_layout=True)
    ax.imshow(
        torch.log(mel + 1e-6).numpy(), origin="lower", aspect="auto", cmap="magma", extent=(0, audio.seconds, 0, 80)
    )
    ax.set(xlabel="seconds", ylabel="mel bin", title=path.stem)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def _send(logger: Any, tag: str, audio: Audio, png: Path, step: int) -> None:
    """Audio and spectrogram to a logger that takes media (TensorBoard, W&B); the CSV logger has the files."""
    from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

    if isinstance(logger, TensorBoardLogger):
        import matplotlib.image

        logger.experiment.add_audio(tag, audio.wav[0], step, sample_rate=audio.sample_rate)
        image = matplotlib.image.imread(str(png))[..., :3]
        logger.experiment.add_image(f"{tag}/mel", np.ascontiguousarray(image), step, dataformats="HWC")
    elif isinstance(logger, WandbLogger):
        import wandb

        logger.experiment.log(
            {
                tag: wandb.Audio(audio.wav[0].numpy(), sample_rate=audio.sample_rate),
                f"{tag}/mel": wandb.Image(str(png)),
            },
            step=step,
        )
