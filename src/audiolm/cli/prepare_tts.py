"""Prepare a TTS corpus in one command: media -> manifest -> transcripts (Whisper where missing) ->
phonemes -> token store (any codec) -> optional similar-prompt mining.

    python -m audiolm.cli.prepare_tts                                   # the embedded espeak corpus
    python -m audiolm.cli.prepare_tts data=folder data.root=voices codec=encodec text.language=en-us \\
        data.annotate.whisper_checkpoint=~/.cache/whisper/small.pt data.annotate.similar_prompts=4

Arguments are the same ``key=value`` overrides as ``train.py task=tts``, and the work lands where
that run looks for it, so training then starts at once. ``voices/{group}/{speaker}/*.wav`` with
sidecar ``.txt`` transcripts is the folder layout ``data=folder`` understands.
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

from audiolm.runs import exit_on_user_error

REPO = Path(__file__).resolve().parents[3]


def config_dir() -> Path:
    return Path(os.environ.setdefault("AUDIOLM_ROOT", str(REPO))) / "configs"


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
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(config_name="train", overrides=["task=tts", *overrides])
    codec = instantiate(cfg.codec)
    datamodule = instantiate(cfg.data, codec=codec)
    datamodule.prepare_data()
    datamodule.setup("fit")
    store = datamodule.store
    console = Console()
    console.print(summary(store, datamodule.train_indices, datamodule.val_indices))
    console.print(f"token store: [bold]{store.path}[/bold]")
    console.print(f"annotated manifest: {store.meta.get('manifest')}")
    return store


if __name__ == "__main__":
    main()
