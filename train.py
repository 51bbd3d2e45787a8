"""Train a run composed from configs/: `python train.py model=llama codec=mulaw trainer.max_steps=200`."""

import os
from pathlib import Path

import hydra
from omegaconf import DictConfig

os.environ.setdefault("AUDIOLM_ROOT", str(Path(__file__).resolve().parent))

from audiolm.runs import exit_on_user_error, train  # noqa: E402


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
@exit_on_user_error
def main(cfg: DictConfig) -> float | None:
    metrics = train(cfg)
    return metrics.get("val/nll")


if __name__ == "__main__":
    main()
