"""A Hydra callback that ends a multirun with a table of its jobs and their objective.

Each job returns its objective (``val/nll``, or the ``optimized_metric`` of an ``hparams_search`` config,
which also sets ``hydra.sweeper.direction``); a job that returns none (it logged no such value) is
flagged, since a sweep cannot rank it.
"""

from __future__ import annotations

import logging
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger("audiolm")


class SweepSummary(Callback):
    def __init__(self, objective: str = "val/nll") -> None:
        self.objective, self.jobs = objective, []

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if config.hydra.mode != RunMode.MULTIRUN:
            return
        failed = job_return.status == JobStatus.FAILED
        value = None if failed else job_return.return_value
        self.jobs.append(
            (
                config.hydra.job.num,
                " ".join(config.hydra.overrides.task),
                value,
                failed,
                config.hydra.runtime.output_dir,
            )
        )

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from rich.console import Console
        from rich.table import Table

        if not self.jobs:
            return
        objective = config.get("optimized_metric") or self.objective
        higher = str(OmegaConf.select(config, "hydra.sweeper.direction", default="minimize")).startswith("max")
        table = Table(title=f"sweep: {objective} per job ({'higher' if higher else 'lower'} is better)")
        for column in ("job", "overrides", objective):
            table.add_column(column)
        for num, overrides, value, failed, _ in sorted(self.jobs, key=lambda j: j[0]):
            shown = "failed" if failed else ("missing" if value is None else f"{value:.4f}")
            table.add_row(str(num), overrides, shown)
        console = Console(soft_wrap=True)
        console.print(table)
        missing = [j for j in self.jobs if j[2] is None and not j[3]]
        if missing:
            console.print(f"warning: {len(missing)} job(s) returned no {objective}: they did not log it")
        console.print(f"sweep folder: {config.hydra.sweep.dir}")
