"""The LM task's loss: padding never counts, levels are counted exactly, codec state rides in checkpoints."""

from __future__ import annotations

import pytest
import torch

from audiolm.backbones.llama import LlamaBackbone
from audiolm.codecs.melvq import MelVQCodec
from audiolm.data.lm import pad_codes
from audiolm.generation.sampling import Sampler
from audiolm.patterns import DelayPattern, FlattenPattern, ParallelPattern
from audiolm.tasks.lm.model import AudioLM
from audiolm.tasks.lm.task import LMTask

OPTIM = {"optimizer": torch.optim.AdamW, "weight_decay": 0.1, "scheduler": {"warmup_steps": 1, "total_steps": 2}}


def make_task(pattern) -> LMTask:
    torch.manual_seed(0)
    codec = MelVQCodec(n_codebooks=3, codebook_size=16)
    backbone = LlamaBackbone(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)
    return LMTask(AudioLM(backbone, pattern, codec, sampler=Sampler()), OPTIM).eval()


@pytest.mark.parametrize("pattern", [FlattenPattern, DelayPattern, ParallelPattern])
def test_padding_does_not_change_the_loss_of_an_item(pattern):
    task = make_task(pattern)
    short, long = torch.randint(0, 16, (3, 5)), torch.randint(0, 16, (3, 9))
    alone = task.losses(pad_codes([short]), train=False)
    padded = task.losses(pad_codes([short, long]), train=False)
    long_alone = task.losses(pad_codes([long]), train=False)
    for q in range(3):
        assert int(padded[f"count_q{q}"]) == 5 + 9
        total = alone[f"nll_sum_q{q}"] + long_alone[f"nll_sum_q{q}"]
        assert torch.allclose(padded[f"nll_sum_q{q}"], total, atol=1e-4)


def test_mean_loss_is_the_per_token_average():
    task = make_task(FlattenPattern)
    out = task.losses(pad_codes([torch.randint(0, 16, (3, 7)), torch.randint(0, 16, (3, 4))]), train=False)
    n = sum(out[f"count_q{q}"] for q in range(3))
    assert torch.allclose(out["loss"], sum(out[f"nll_sum_q{q}"] for q in range(3)) / n)
    # an untrained model is near uniform over its vocabulary (3 x 16 ids for flatten)
    assert abs(out["loss"].item() - torch.log(torch.tensor(48.0))) < 0.5


def test_checkpoint_carries_the_fitted_codec_state_not_its_weights():
    task = make_task(FlattenPattern)
    task.model.codec.load_fitted_state({"centroids": torch.randn(3, 16, task.model.codec.n_mels)})
    checkpoint = {}
    task.on_save_checkpoint(checkpoint)
    assert set(checkpoint["codec_state"]) == {"centroids"}
    assert not any(k.startswith("codec") for k in task.state_dict())
    fresh = make_task(FlattenPattern)
    fresh.on_load_checkpoint(checkpoint)
    assert torch.equal(fresh.model.codec.fitted_state()["centroids"], checkpoint["codec_state"]["centroids"])


def test_windows_longer_than_the_backbone_accepts_are_a_config_error():
    from audiolm.backbones.transformer import TransformerBackbone
    from audiolm.errors import ConfigError

    codec = MelVQCodec(n_codebooks=3, codebook_size=16)
    model = AudioLM(
        TransformerBackbone(hidden_size=32, num_layers=1, num_heads=2, max_position_embeddings=64),
        FlattenPattern,
        codec,
    )
    model.check_sequence_length(21)  # 63 steps + start = 64 positions: fits
    with pytest.raises(ConfigError, match="data.segment_seconds.*model.max_position_embeddings"):
        model.check_sequence_length(22)
