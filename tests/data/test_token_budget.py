"""The token budget: every audio-token data option bounds a batch's padded positions, so memory follows
``data.max_tokens`` whatever the codec's frame rate or the pattern (issue: mu-law's 16,000 tokens a
second once made a default run grow past 22 GB)."""

from __future__ import annotations

import resource

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from audiolm.data.datamodule import TokenDataModule

from conftest import ROOT, run_entry

TOKEN_DATA = ["synthetic", "folder", "media", "manifest", "musiccaps"]


def composed(*overrides: str):
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides))


@pytest.mark.parametrize("data", TOKEN_DATA)
def test_every_token_data_option_sets_a_budget(data):
    cfg = composed(f"data={data}")
    assert cfg.data.max_tokens == 8192 and cfg.data.batch_size == 16


@pytest.mark.parametrize("codec", ["mulaw", "melvq"])
@pytest.mark.parametrize("pattern", ["delay", "flatten", "parallel"])
def test_audio_lm_windows_fit_the_budget_whatever_the_codec_and_pattern(codec, pattern, tmp_path):
    cfg = composed(f"codec={codec}", f"pattern={pattern}")
    codec_ = instantiate(cfg.codec)
    layout = instantiate(cfg.pattern)(n_codebooks=codec_.n_codebooks, codebook_size=codec_.codebook_size)
    dm = TokenDataModule(
        corpus=None,
        codec=codec_,
        tokens_dir=str(tmp_path),
        segment_seconds=cfg.data.segment_seconds,
        max_tokens=cfg.data.max_tokens,
        pattern=instantiate(cfg.pattern),
    )
    steps = layout.num_steps(dm.max_frames)
    assert steps <= cfg.data.max_tokens
    # one window is never shorter than the budget allows: only cut where it must be
    full = round(cfg.data.segment_seconds * codec_.frame_rate)
    assert dm.max_frames == full or layout.num_steps(dm.max_frames + 1) > cfg.data.max_tokens


def test_a_task_with_its_own_items_keeps_its_frames(tmp_path):
    cfg = composed("codec=mulaw")
    dm = TokenDataModule(
        corpus=None,
        codec=instantiate(cfg.codec),
        tokens_dir=str(tmp_path),
        segment_seconds=1.0,
        max_tokens=100,
        pattern=instantiate(cfg.pattern),
        items=lambda *a: None,  # a TTS target is never cut: its items leave out what is too long instead
    )
    assert dm.max_frames == 16000


@pytest.mark.slow
def test_a_default_mu_law_run_trains_within_8_gb(data_dir, tmp_path):
    """The README's promise for `python train.py codec=mulaw` (the defaults but a smaller corpus and 2 steps)."""
    run_entry(
        "train.py",
        "codec=mulaw",
        "data.corpus.n_utterances=24",
        "trainer.max_steps=2",
        "trainer.val_check_interval=2",
        "trainer.limit_val_batches=1",
        "callbacks.samples=null",
        f"paths.data_dir={data_dir}",
        f"hydra.run.dir={tmp_path}",
    )
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # the largest child so far, in bytes
    assert peak < 8 * 2**30, f"peak RSS {peak / 2**30:.1f} GB"
