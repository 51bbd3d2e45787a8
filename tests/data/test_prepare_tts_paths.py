"""Where `python -m audiolm.cli.prepare_tts` puts data: where ``paths.*`` say (the working directory by
default), never beside the installed package."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from audiolm.cli import prepare_tts
from audiolm.errors import ConfigError

from conftest import ROOT


@pytest.fixture
def clean_env(monkeypatch):
    monkeypatch.delenv("AUDIOLM_ROOT", raising=False)
    monkeypatch.delenv(prepare_tts.CONFIG_ENV, raising=False)


def _data_folders(cfg) -> list[Path]:
    return [Path(p).resolve() for p in (cfg.data.corpus.root, cfg.data.tokens_dir, cfg.data.annotate.cache_dir)]


def test_data_goes_under_the_working_directory_by_default(tmp_path, monkeypatch, clean_env):
    monkeypatch.chdir(tmp_path)
    cfg = prepare_tts.compose_config([])
    assert Path(cfg.paths.data_dir).resolve() == tmp_path / "data"
    assert all(p.is_relative_to(tmp_path / "data") for p in _data_folders(cfg))


def test_paths_overrides_and_audiolm_root_are_the_only_other_sources(tmp_path, monkeypatch, clean_env):
    monkeypatch.chdir(tmp_path)
    cfg = prepare_tts.compose_config([f"paths.data_dir={tmp_path / 'elsewhere'}"])
    assert all(p.is_relative_to(tmp_path / "elsewhere") for p in _data_folders(cfg))
    monkeypatch.setenv("AUDIOLM_ROOT", str(tmp_path / "root"))
    cfg = prepare_tts.compose_config([])
    assert all(p.is_relative_to(tmp_path / "root" / "data") for p in _data_folders(cfg))


def test_configs_are_found_or_the_error_says_how(tmp_path, monkeypatch, clean_env):
    monkeypatch.chdir(tmp_path)
    assert prepare_tts.config_dir() == (ROOT / "configs").resolve()  # the checkout of this editable install
    monkeypatch.setattr(prepare_tts, "CHECKOUT_CONFIGS", tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="run from the audiolm repository, or set AUDIOLM_CONFIG_DIR="):
        prepare_tts.config_dir()
    monkeypatch.setenv(prepare_tts.CONFIG_ENV, str(tmp_path))
    with pytest.raises(ConfigError, match=f"AUDIOLM_CONFIG_DIR={tmp_path} has no train.yaml"):
        prepare_tts.config_dir()
    monkeypatch.setenv(prepare_tts.CONFIG_ENV, str(ROOT / "configs"))
    assert prepare_tts.config_dir() == (ROOT / "configs").resolve()


def _installed_wheel_venv(tmp_path: Path) -> Path:
    """A venv holding audiolm as a built wheel (not editable), reusing this environment's other packages."""
    src = tmp_path / "project"  # build from a copy: an in-tree build would leave build/ in the repository
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            str(wheels),
            str(src),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = Path(
        subprocess.run(
            [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    # The existing packages, as a plain path (its .pth files, among them the editable audiolm, are not read).
    (site / "reuse_existing.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(venv / "bin" / "python"),
            "install",
            "--no-deps",
            "--no-index",
            "-q",
            str(next(wheels.glob("audiolm-*.whl"))),
        ],
        check=True,
        capture_output=True,
    )
    return venv


@pytest.mark.slow
def test_an_installed_wheel_puts_data_in_the_working_directory(tmp_path):
    venv = _installed_wheel_venv(tmp_path)
    python = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k not in ("AUDIOLM_ROOT", prepare_tts.CONFIG_ENV, "PYTHONPATH")}
    env.update(HF_HUB_OFFLINE="1", PYTHONWARNINGS="ignore")
    where = subprocess.run(
        [python, "-c", "import audiolm; print(audiolm.__file__)"], check=True, capture_output=True, text=True, env=env
    ).stdout
    assert Path(where.strip()).is_relative_to(venv)  # the wheel, not the checkout
    work = tmp_path / "work"
    work.mkdir()
    cmd = [python, "-m", "audiolm.cli.prepare_tts", "data.corpus.n_utterances=16", "codec=mulaw"]
    lost = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
    assert lost.returncode == 1 and "set AUDIOLM_CONFIG_DIR=" in lost.stderr.strip().splitlines()[-1]
    done = subprocess.run(
        cmd,
        cwd=work,
        env={**env, prepare_tts.CONFIG_ENV: str(ROOT / "configs")},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = " ".join(done.stdout.split())
    assert f"data folder (paths.data_dir): {work / 'data'}" in out and "TTS corpus: 16 utterances" in out
    assert list((work / "data" / "embedded").glob("*/manifest.jsonl")) and (work / "data" / "tokens").is_dir()
    assert not [*venv.rglob("manifest.jsonl"), *venv.rglob("*.wav"), *venv.rglob("meta.json")]  # nothing by the package
