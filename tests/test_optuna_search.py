"""hparams_search=lm_optuna: a search with Optuna's sampler through hydra-optuna-sweeper, ranked by what train.py
returns (optimized_metric), with the best trial reported."""

from __future__ import annotations

import csv

import pytest
from omegaconf import OmegaConf

from conftest import TINY, run_entry


def last_val_nll(job) -> float:
    rows = list(csv.DictReader((job / "csv" / "metrics.csv").open()))
    return float([r["val/nll"] for r in rows if r.get("val/nll")][-1])


def test_optuna_search_runs_three_trials_and_reports_the_best(data_dir, tmp_path):
    proc = run_entry(
        "train.py",
        "hparams_search=lm_optuna",
        "hydra.sweeper.n_trials=3",
        *TINY,
        f"paths.data_dir={data_dir}",
        f"hydra.sweep.dir={tmp_path}",
        cwd=tmp_path,
    )
    jobs = sorted(p for p in tmp_path.iterdir() if p.is_dir() and p.name.isdigit())
    assert [p.name for p in jobs] == ["0", "1", "2"]
    values = {job.name: last_val_nll(job) for job in jobs}  # each trial's objective, as its run logged it
    result = OmegaConf.load(tmp_path / "optimization_results.yaml")
    assert result.best_value == pytest.approx(min(values.values()), abs=1e-4)
    assert set(result.best_params) == {"optim.optimizer.lr", "optim.weight_decay", "model"}
    best = min(values, key=values.get)
    chosen = OmegaConf.load(tmp_path / best / ".hydra" / "overrides.yaml")
    assert f"optim.optimizer.lr={result.best_params['optim.optimizer.lr']}" in chosen
    assert "Best value" in proc.stdout + proc.stderr
    lrs = [OmegaConf.load(job / "checkpoints" / "config.yaml").optim.optimizer.lr for job in jobs]
    assert all(3e-4 <= lr <= 1e-2 for lr in lrs) and len(set(lrs)) == 3  # each trial drew its own from the space
