"""Every option of every config group composes, and the composed config instantiates what it names."""

from __future__ import annotations

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_object, instantiate
from omegaconf import OmegaConf

from audiolm.codecs.errors import CodecUnavailableError
from audiolm.patterns.base import Pattern

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
    assert {
        "task",
        "model",
        "codec",
        "data",
        "pattern",
        "trainer",
        "logger",
        "callbacks",
        "paths",
        "hydra",
        "debug",
        "experiment",
        "hparams_search",
        "sampling",
    } <= set(GROUPS)
    for group in GROUPS:
        assert options(group), f"config group {group} is empty"


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in options(g)])
def test_option_composes_and_its_targets_import(group, option):
    cfg = compose_train([f"{group}={option}"])
    found = targets(cfg)
    assert found, f"{group}={option} names no _target_ at all"
    for target in found:
        assert callable(get_object(target)), f"{group}={option}: {target} is not importable"
    # every interpolation resolves (as it would inside a run)
    HydraConfig.instance().set_config(cfg)
    run_config = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    OmegaConf.to_container(run_config, resolve=True, throw_on_missing=False)


@pytest.mark.parametrize("option", options("model"))
def test_every_backbone_builds(option):
    backbone = instantiate(compose_train([f"model={option}"]).model)
    assert backbone.hidden_size == 256 and sum(p.numel() for p in backbone.parameters()) > 0


@pytest.mark.parametrize("option", options("codec"))
def test_every_codec_builds_or_names_what_is_missing(option):
    try:
        codec = instantiate(compose_train([f"codec={option}"]).codec)
    except Exception as exc:  # noqa: BLE001 - Hydra wraps the target's error
        assert isinstance(exc.__cause__, CodecUnavailableError), f"codec={option}: {exc!r}"
        return
    assert codec.n_codebooks >= 1 and codec.codebook_size >= 2 and codec.frame_rate > 0


@pytest.mark.parametrize("option", options("pattern"))
def test_every_pattern_builds_for_a_codec(option):
    pattern = instantiate(compose_train([f"pattern={option}"]).pattern)(n_codebooks=4, codebook_size=256)
    assert isinstance(pattern, Pattern) and pattern.vocab_size >= 256


def test_default_is_the_demo_experiment():
    cfg = compose_train([])
    assert cfg.model._target_.endswith("MambaBackbone")
    assert cfg.codec._target_.endswith("MelVQCodec")
    assert cfg.data.corpus._target_.endswith("EmbeddedCorpus")
    assert cfg.task._target_.endswith("LMTask") and cfg.task.model._target_.endswith("AudioLM")


def test_marcrandbot_recipe():
    cfg = compose_train(["experiment=marcrandbot"])
    assert cfg.codec._target_.endswith("SpeechTokenizerCodec") and cfg.codec.n_q == 4
    assert cfg.model._target_.endswith("MambaBackbone")
    assert cfg.data.segment_seconds == 10.0


def test_preview_config_is_the_training_config_plus_preview_settings():
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(config_name="preview", overrides=["codec=mulaw", "preview.n_q=[1]"])
    assert cfg.task_name == "preview" and list(cfg.preview.n_q) == [1]
    assert cfg.codec._target_.endswith("MuLawCodec") and "_target_" in cfg.data and cfg.seed == 1234


# -- task parts: groups nested under task/<family>/, chosen in a task yaml's defaults -------------------
def task_parts() -> list[tuple[str, str, str, str]]:
    """(task, part group, package key, option) for every option of every part group a task yaml selects
    with ``/task/<family>/.../<part>@<key>: <default>``."""
    found = []
    for task_yaml in sorted((CONFIGS / "task").glob("*.yaml")):
        for entry in OmegaConf.load(task_yaml).get("defaults", []):
            name = next(iter(entry)) if OmegaConf.is_dict(entry) else entry
            if "@task." in name and name.startswith("/task/"):
                group, key = name.lstrip("/").split("@")
                found += [(task_yaml.stem, group, key, o) for o in options(group)]
    return found


def test_tasks_with_parts_are_found():
    assert {(t, g.rsplit("/", 1)[1]) for t, g, _, _ in task_parts()} >= {
        ("caption", "encoder"),
        ("caption", "llm"),
        ("caption", "projector"),
        ("tts_parallel", "mode"),
        ("tts_parallel", "encoder"),
    }


@pytest.mark.parametrize("task,group,key,option", task_parts())
def test_task_part_composes_and_its_targets_import(task, group, key, option):
    cfg = compose_train([f"task={task}", f"{group}@{key}={option}"])
    found = targets(OmegaConf.select(cfg, key))
    assert found, f"{group}={option} names no _target_"
    for target in found:
        assert callable(get_object(target)), f"{group}={option}: {target} is not importable"
    if group.endswith("projector"):
        projector = instantiate(OmegaConf.select(cfg, key))(in_dim=32, out_dim=48)
        assert projector.head(torch.zeros(1, 32)).shape[-1] == 48


def test_caption_task_brings_its_data_and_callbacks_and_builds():
    from audiolm.runs import build

    cfg = compose_train(["task=caption"])
    assert cfg.data._target_.endswith("EmbeddedCaptions") and cfg.callbacks.throughput is None
    assert compose_train(["task=caption", "data=caption_manifest"]).data._target_.endswith("ManifestCaptions")
    HydraConfig.instance().set_config(cfg)
    codec, datamodule, task = build(cfg)
    assert codec is None and type(task).__name__ == "CaptionTask"  # no codec is built for a captioner
    assert type(task.model).__name__ == "Captioner"
    assert task.model.encoder.trim and task.model.projector.head.in_features == 64


def test_caption_musiccaps_is_the_seed_recipe():
    cfg = compose_train(["experiment=caption_musiccaps"])
    model = cfg.task.model
    assert model.encoder._target_.endswith("load_whisper_encoder") and model.encoder.source == "large-v3"
    assert model.projector.pooling.n_out == 250 and model.projector.hidden is None
    assert model.llm.source == "Open-Orca/Mistral-7B-OpenOrca" and not cfg.task.train_llm
    assert model.prompt == "Describe the sound of the given file" and cfg.task.lora.rank == 0
    assert cfg.optim.optimizer._target_ == "torch.optim.Adam" and cfg.optim.optimizer.lr == 1.5e-3
    assert cfg.optim.scheduler.decay == "constant" and cfg.optim.scheduler.warmup_steps == 0
    assert cfg.data._target_.endswith("MusicCapsCaptions")
    lora = compose_train(["experiment=caption_musiccaps_lora"]).task.lora
    assert lora.rank == 8 and list(lora.target_modules) == ["q_proj", "v_proj"]
