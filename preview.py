"""Listen before training: `python preview.py codec=speechtokenizer codec.pretrained=DIR preview.n_q=[1,2,4,8]`.

Writes round-trip WAVs, preview.md / preview.json (SI-SDR, log-mel distance and the judges' STOI, PESQ,
DNSMOS and WER per n_q, beside the originals' DNSMOS and WER) and preview.png.
"""

import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

# data/ and logs/ go under the working directory unless AUDIOLM_ROOT says otherwise (configs/paths)
os.environ.setdefault("AUDIOLM_ROOT", os.getcwd())

from audiolm.overrides import check_overrides  # noqa: E402
from audiolm.preview import preview  # noqa: E402
from audiolm.runs import exit_on_user_error  # noqa: E402

CONFIGS = str(Path(__file__).resolve().parent / "configs")


@hydra.main(version_base="1.3", config_path="configs", config_name="preview")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    preview(cfg)


if __name__ == "__main__":
    exit_on_user_error(check_overrides)(sys.argv[1:], CONFIGS, "preview")
    main()
