"""Train a run composed from configs/: `python train.py model=llama codec=mulaw trainer.max_steps=200`."""

import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

# data/ and logs/ go under the working directory unless AUDIOLM_ROOT says otherwise (configs/paths)
os.environ.setdefault("AUDIOLM_ROOT", os.getcwd())

from audiolm.overrides import check_overrides  # noqa: E402
from audiolm.runs import exit_on_user_error, objective, shared_run_dir, train  # noqa: E402

CONFIGS = str(Path(__file__).resolve().parent / "configs")


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
@exit_on_user_error
def main(cfg: DictConfig) -> float | None:
    # a sweep ranks runs by what this returns: val/nll, or the optimized_metric of an hparams_search config
    return objective(cfg, train(cfg))


if __name__ == "__main__":
    exit_on_user_error(check_overrides)(sys.argv[1:], CONFIGS, "train")
    # under torchrun / srun: one run folder for all ranks
    sys.argv[1:] = exit_on_user_error(shared_run_dir)(sys.argv[1:])
    main()
