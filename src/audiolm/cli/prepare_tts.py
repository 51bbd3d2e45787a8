"""Prepare a TTS corpus in one command: media -> manifest -> transcripts (Whisper where missing) ->
phonemes -> token store (any codec) -> optional similar-prompt mining.

    python -m audiolm.cli.prepare_tts                                   # the synthetic espeak corpus
    python -m audiolm.cli.prepare_tts data=folder data.root=voices codec=encodec text.language=en-us \\
        data.annotate.whisper_checkpoint=~/.cache/whisper/small.pt data.annotate.similar_prompts=4

Arguments are the same ``key=value`` overrides as ``train.py task=tts``, and the work lands where
that run looks for it, so training then starts at once. ``voices/{group}/{speaker}/*.wav`` with
sidecar ``.txt`` transcripts is the folder layout ``data=folder`` understands.

Where data goes is decided by the config alone: ``paths.data_dir`` (default ``${paths.root_dir}/data``,
and ``paths.root_dir`` is ``$AUDIOLM_ROOT`` or else the working directory), never by where this package
is installed. The configs themselves are read from ``$AUDIOLM_CONFIG_DIR``, else ``./configs``, else
the source checkout this package runs from (an editable install).
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from rich.console import Console
from rich.table import Table

from audiolm.errors import ConfigError
from audiolm.runs import exit_on_user_error

CONFIG_ENV = "AUDIOLM_CONFIG_DIR"
CHECKOUT_CONFIGS = Path(__file__).resolve().parents[3] / "configs"  # src/audiolm/cli/ -> the repository


def config_dir() -> Path:
    """The configs folder (holding ``train.yaml``): ``$AUDIOLM_CONFIG_DIR``, else ``./configs``, else the source
    checkout of an editable install. It only says where the configs are; data goes to ``paths.data_dir``."""
    if os.environ.get(CONFIG_ENV):
        chosen = Path(os.environ[CONFIG_ENV]).expanduser()
        if not (chosen / "train.yaml").is_file():
            raise ConfigError(f"{CONFIG_ENV}={chosen} has no train.yaml; point it at audiolm's configs/ folder")
        return chosen.resolve()
    for candidate in (Path.cwd() / "configs", CHECKOUT_CONFIGS):
        if (candidate / "train.yaml").is_file():
            return candidate.resolve()
    raise ConfigError(
        f"no audiolm configs found in {Path.cwd() / 'configs'} or beside the installed package; run "
        f"from the audiolm repository, or set {CONFIG_ENV}=/path/to/audiolm/configs"
    )


def compose_config(overrides: list[str]):
    """The ``train.py task=tts`` config with ``overrides``; its ``paths.*`` say where data goes."""
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose(config_name="train", overrides=["task=tts", *overrides])


def summary(store, train: list[int], val: list[int]) -> Table:
    """Per-speaker utterances and hours, with train/val counts."""
    table = Table(title=f"TTS corpus: {len(store)} utterances, {store.frames_total / store.frame_rate / 3600:.3f} h")
    for col in ("speaker", "utterances", "hours", "train", "val"):
        table.add_column(col, justify="left" if col == "speaker" else "right")
    split = {**{i: "train" for i in train}, **{i: "val" for i in val}}
    by_speaker: dict[str, list[int]] = {}
    for i, e in enumerate(store.entries):
        by_speaker.setdefault(e.get("speaker") or "-", []).append(i)
    for name, items in sorted(by_speaker.items()):
        counts = Counter(split.get(i) for i in items)
        hours = sum(store.entries[i]["n_frames"] for i in items) / store.frame_rate / 3600
        table.add_row(name, str(len(items)), f"{hours:.3f}", str(counts["train"]), str(counts["val"]))
    return table


@exit_on_user_error
def main(argv: list[str] | None = None):
    overrides = sys.argv[1:] if argv is None else argv
    if {"-h", "--help"} & set(overrides):
        print(__doc__ + "\nusage: python -m audiolm.cli.prepare_tts [key=value ...]")
        return None
    cfg = compose_config(overrides)
    codec = instantiate(cfg.codec)
    datamodule = instantiate(cfg.data, codec=codec)
    datamodule.prepare_data()
    datamodule.setup("fit")
    store = datamodule.store
    console = Console()
    console.print(summary(store, datamodule.train_indices, datamodule.val_indices))
    console.print(f"token store: [bold]{store.path}[/bold]")
    console.print(f"annotated manifest: {store.meta.get('manifest')}")
    console.print(f"data folder (paths.data_dir): {Path(cfg.paths.data_dir).resolve()}")
    return store


if __name__ == "__main__":
    main()
