"""The random state of a run travels with its checkpoints, so a resumed run draws what an unbroken one does.

Lightning restores weights, optimiser, schedulers, loops and the train loader's position
(``data.samplers.ResumableLoader``) but not the global random generators: a run resumed at step N
would draw other TTS levels, condition dropouts or masks from then on than the run that went on.
This callback saves Python's, NumPy's and torch's (CPU and CUDA) generators with every checkpoint
and puts them back when one is loaded. Data draws do not depend on it: each item visit has its own
seed (``data.samplers.Visit``).
"""

from __future__ import annotations

import random
from typing import Any

import lightning as L
import numpy as np
import torch


class ResumeRng(L.Callback):
    def state_dict(self) -> dict[str, Any]:
        numpy = np.random.get_state(legacy=False)
        numpy["state"]["key"] = numpy["state"]["key"].tolist()  # plain types: checkpoints load weights_only
        state = {"python": random.getstate(), "numpy": numpy, "torch": torch.get_rng_state()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        random.setstate(state["python"])
        numpy = state["numpy"]
        np.random.set_state({**numpy, "state": {**numpy["state"], "key": np.asarray(numpy["state"]["key"], np.uint32)}})
        torch.set_rng_state(state["torch"])
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
