"""Evaluate a checkpoint and write samples: `python eval.py ckpt=<run>/checkpoints/last.ckpt sampling.temperature=0.8`.

The run's own config (saved next to the checkpoint) is loaded; other arguments override it.
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("AUDIOLM_ROOT", str(Path(__file__).resolve().parent))

from audiolm.runs import evaluate, exit_on_user_error  # noqa: E402
from audiolm.errors import AudiolmError  # noqa: E402


@exit_on_user_error
def main(argv: list[str]) -> None:
    ckpts = [a.split("=", 1)[1] for a in argv if a.startswith("ckpt=")]
    if len(ckpts) != 1:
        raise AudiolmError("usage: python eval.py ckpt=<run dir>/checkpoints/last.ckpt [key=value ...]")
    overrides = [a for a in argv if not a.startswith("ckpt=")]
    evaluate(Path(ckpts[0]), overrides)


if __name__ == "__main__":
    main(sys.argv[1:])
