"""Every option of every config group composes, and the composed config instantiates what it names."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import get_object
from omegaconf import OmegaConf

from conftest import ROOT

CONFIGS = ROOT / "configs"
GROUPS = sorted(p.name for p in CONFIGS.iterdir() if p.is_dir())


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIGS / group).glob("*.yaml"))


def compose_train(overrides: list[str]):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(config_name="train", overrides=overrides, return_hydra_config=True)


def targets(node) -> list[str]:
    found = []
    if OmegaConf.is_dict(node):
        if "_target_" in node:
            found.append(node["_target_"])
        for key in node:
            if key != "hydra":
                found += targets(node._get_node(key))
    elif OmegaConf.is_list(node):
        for item in node:
            found += targets(item)
    return found


def test_every_group_has_options():
    assert {"task", "model", "codec", "data", "pattern", "trainer", "logger", "callbacks", "paths", "hydra",
            "debug", "experiment", "hparams_search", "sampling"} <= set(GROUPS)
    for group in GROUPS:
        assert options(group), f"config group {group} is empty"


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in options(g)])
def test_option_composes_and_its_targets_import(group, option):
    cfg = compose_train([f"{group}={option}"])
    found = targets(cfg)
    assert found, f"{group}={option} names no _target_ at all"
    for target in found:
        assert callable(get_object(target)), f"{group}={option}: {target} is not importable"



def test_default_is_the_demo_experiment():
    cfg = compose_train([])
    assert cfg.model._target_.endswith("MambaBackbone")
    assert cfg.codec._target_.endswith("MelVQCodec")
    assert cfg.data.corpus._target_.endswith("EmbeddedCorpus")
    assert cfg.task._target_.endswith("AudioLMTask")


def test_marcrandbot_recipe():
    cfg = compose_train(["experiment=marcrandbot"])
    assert cfg.codec._target_.endswith("SpeechTokenizerCodec") and cfg.codec.n_q == 4
    assert cfg.model._target_.endswith("MambaBackbone")
    assert cfg.data.segment_seconds == 10.0
