"""Evaluate a checkpoint and write samples: `python eval.py ckpt=<run>/checkpoints/last.ckpt sampling.temperature=0.8`.

The run's own config (saved next to the checkpoint) is loaded; other arguments override it.
"""

import os
import sys
from pathlib import Path

# data/ and logs/ go under the working directory unless AUDIOLM_ROOT says otherwise (configs/paths)
os.environ.setdefault("AUDIOLM_ROOT", os.getcwd())

from audiolm.errors import AudiolmError  # noqa: E402
from audiolm.overrides import refuse_model_groups  # noqa: E402
from audiolm.runs import evaluate, exit_on_user_error  # noqa: E402


@exit_on_user_error
def main(argv: list[str]) -> None:
    if {"-h", "--help"} & set(argv):
        print(__doc__ + "\nusage: python eval.py ckpt=<run dir or .ckpt> [key=value ...]   e.g. eval.n_samples=8")
        return
    ckpts = [a.split("=", 1)[1] for a in argv if a.startswith("ckpt=")]
    if len(ckpts) != 1:
        raise AudiolmError("usage: python eval.py ckpt=<run dir, or its checkpoints/last.ckpt> [key=value ...]")
    overrides = [a for a in argv if not a.startswith("ckpt=")]
    refuse_model_groups(overrides)
    evaluate(Path(ckpts[0]), overrides)


if __name__ == "__main__":
    main(sys.argv[1:])
