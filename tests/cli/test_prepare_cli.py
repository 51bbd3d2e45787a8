"""`python -m audiolm.cli.prepare` and the flat data keys of the config: what a user prepares from the
command line, its summary, and the train/val counts a run will see."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate

from audiolm.cli import prepare as cli
from audiolm.data.manifest import read_manifest
from audiolm.data.split import side_of
from audiolm.errors import MissingFileError

from conftest import ROOT
from support.media_clips import SR, tone, write


def compose_data(overrides: list[str]):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


def test_flat_data_keys_prepare_and_tokenise(tmp_path):
    write(tmp_path / "audio" / "spk" / "a.wav", tone(12.0, amp=0.2))
    cfg = compose_data(
        [
            "data=folder",
            f"data.root={tmp_path / 'audio'}",
            f"paths.data_dir={tmp_path / 'data'}",
            "data.prepare.segment_seconds=2.0",
            "codec=mulaw",
            "data.num_workers=0",
        ]
    )
    dm = instantiate(cfg.data, codec=instantiate(cfg.codec))
    assert dm.segment_seconds == 2.0 and dm.corpus.options.segment_seconds == 2.0
    dm.prepare_data()
    rows = read_manifest(next((tmp_path / "data" / "prepared").glob("audio-*/manifest.jsonl")))
    assert len(rows) == 6 and all(r.speaker == "spk" for r in rows)
    cfg = compose_data(["data=musiccaps", f"data.csv={tmp_path / 'none.csv'}", f"data.audio_dir={tmp_path}"])
    with pytest.raises(MissingFileError, match="data.csv"):
        instantiate(cfg.data, codec=None).corpus.manifest()


def test_cli_prints_summary_drops_and_manifest(tmp_path, capsys):
    write(tmp_path / "in" / "spk" / "a.wav", np.concatenate([tone(10.0, amp=0.2), np.zeros(10 * SR, np.float32)]))
    manifest = cli.main(
        [
            "folder",
            str(tmp_path / "in"),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--segment-seconds",
            "5",
            "--no-progress",
        ]
    )
    out = capsys.readouterr().out
    assert "spk" in out and "2 dropped" in out and "2 mostly silent" in out and str(manifest) in out.replace("\n", "")


def test_cli_summary_splits_folder_corpora_as_the_run_does(tmp_path, capsys):
    """Folder corpora have no split column: the summary used to say train 0 / val 0 for every speaker."""
    for speaker in ("ann", "bob"):
        write(tmp_path / "in" / speaker / "long.wav", tone(60.0, amp=0.2, freq=200 if speaker == "ann" else 300))
    manifest = cli.main(
        [
            "folder",
            str(tmp_path / "in"),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--segment-seconds",
            "1",
            "--val-percent",
            "10",
            "--no-progress",
        ]
    )
    rows = cli.summary_rows(manifest, 10.0)
    assert [r[0] for r in rows] == ["ann", "bob", "total"]
    assert all(n == 60 and train + val == n and train > 0 and val > 0 for _, n, _, train, val in rows[:2])
    utts = read_manifest(manifest)
    expected_val = sum(side_of(u.id, 10.0, u.extra) == "val" for u in utts)
    assert rows[-1][1:] == (120, pytest.approx(120 / 3600), 120 - expected_val, expected_val)
    out = " ".join(capsys.readouterr().out.split())
    assert (
        re.search(rf"total │ 120 │ [0-9.]+ │ {120 - expected_val} │ {expected_val} │", out) and "10% by id hash" in out
    )


def test_cli_media_subcommand_prepares_the_files_a_list_names(tmp_path, capsys):
    write(tmp_path / "m" / "a.wav", tone(3.0, amp=0.2))
    (tmp_path / "list.csv").write_text("path,speaker\nm/a.wav,ann\n")
    manifest = cli.main(["media", str(tmp_path / "list.csv"), "--cache-dir", str(tmp_path / "cache"), "--no-progress"])
    assert [(r.id, r.speaker) for r in read_manifest(manifest)] == [("m/a#0000", "ann")]
    with pytest.raises(SystemExit):  # the old name, which said nothing about what it does, is gone
        cli.main(["manifest", str(tmp_path / "list.csv")])
    assert "invalid choice: 'manifest'" in capsys.readouterr().err
