"""Kill resistance: SIGKILL a tokenising process halfway; the rerun completes and equals an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import yaml

from audiolm.data.manifest import Utterance, write_manifest
from audiolm.data.tokens.store import TokenStore

from conftest import ROOT

N_ITEMS, SHARD_ITEMS = 40, 2
CODEC = {"_target_": "support.slow_codec.SlowMuLawCodec", "sample_rate": 8000, "delay": 0.05}


def make_manifest(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(N_ITEMS):
        path = tmp_path / "audio" / f"u{i:02d}.wav"
        path.parent.mkdir(exist_ok=True)
        n = int(8000 * (0.2 + 0.01 * i))
        sf.write(path, 0.3 * np.sin(np.arange(n) * (0.01 + 0.002 * i)) + 0.01 * rng.standard_normal(n), 8000)
        rows.append(Utterance(path=str(path), duration=n / 8000, id=f"u{i:02d}"))
    return write_manifest(tmp_path / "manifest.jsonl", rows)


def tokenize_cmd(manifest: Path, store_root: Path, codec_yaml: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "audiolm.cli.tokenize",
        "--manifest",
        str(manifest),
        "--store-root",
        str(store_root),
        "--codec-config",
        str(codec_yaml),
        "--batch-size",
        "1",
        "--shard-items",
        str(SHARD_ITEMS),
        "--no-progress",
    ]


def run_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])}


def store_contents(root: Path) -> dict[str, tuple[int, bytes]]:
    (path,) = [p for p in root.iterdir() if p.is_dir()]
    store = TokenStore(path)
    return {e["id"]: (e["n_frames"], store.codes(i).tobytes()) for i, e in enumerate(store.entries)}


def test_sigkill_halfway_then_rerun_equals_uninterrupted(tmp_path):
    manifest = make_manifest(tmp_path)
    codec_yaml = tmp_path / "codec.yaml"
    codec_yaml.write_text(yaml.safe_dump(CODEC))

    killed_root = tmp_path / "killed"
    proc = subprocess.Popen(
        tokenize_cmd(manifest, killed_root, codec_yaml),
        env=run_env(),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        shards = list(killed_root.glob("*/shard-*.json"))
        if len(shards) >= N_ITEMS // SHARD_ITEMS // 2:
            break
        time.sleep(0.02)
    assert proc.poll() is None, f"tokenisation ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (store_dir,) = [p for p in killed_root.iterdir() if p.is_dir()]
    held = TokenStore(store_dir, allow_incomplete=True)
    assert not held.meta.get("complete") and 0 < len(held) < N_ITEMS

    rerun = subprocess.run(
        tokenize_cmd(manifest, killed_root, codec_yaml), env=run_env(), cwd=ROOT, capture_output=True, text=True
    )
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    clean_root = tmp_path / "clean"
    clean = subprocess.run(
        tokenize_cmd(manifest, clean_root, codec_yaml), env=run_env(), cwd=ROOT, capture_output=True, text=True
    )
    assert clean.returncode == 0, clean.stderr[-2000:]

    resumed, uninterrupted = store_contents(killed_root), store_contents(clean_root)
    assert len(uninterrupted) == N_ITEMS
    assert resumed == uninterrupted
    assert not list(store_dir.glob("*.partial"))
