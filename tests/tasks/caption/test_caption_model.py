"""The captioner's parts with tiny random Whisper and Mistral: loss mask, pad token, cached generation, LoRA,
trainable-only checkpoints, the window trim, weight loading, and bad input."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import MistralConfig, MistralForCausalLM, PreTrainedTokenizerFast

from audiolm.errors import ConfigError, DataError
from audiolm.tasks.caption.generate import recompute_greedy
from audiolm.tasks.caption.layout import IGNORE, PromptLayout
from audiolm.tasks.caption.llm import LanguageModel

from support.caption_models import CAPTIONS, OPTIM, batch_of, tiny_model, tiny_task, tone


@pytest.fixture(scope="module")
def task():
    torch.manual_seed(0)
    return tiny_task().eval()


# -- loss and layout ---------------------------------------------------------------------------
def test_labels_cover_exactly_the_caption_and_its_eos(task):
    b = batch_of(tone(1.0), tone(0.5, 880), captions=["A loud tone.", "Quiet white noise hissing steadily."])
    audio, n = task.model.embed_audio(b["wav"], b["lengths"])
    ids = task.model.layout.caption_ids(b["captions"], 64)
    seq = task.model.layout.training(task.model.llm.embed, audio, n, ids)
    for i, row in enumerate(ids):
        labelled = seq.labels[i][seq.labels[i] != IGNORE].tolist()
        assert labelled == row and row[-1] == task.model.layout.eos_id  # caption tokens then EOS, nothing else
        real = int(seq.attention_mask[i].sum())
        assert seq.attention_mask[i, :real].all() and not seq.attention_mask[i, real:].any()  # right padding
        assert seq.labels[i, real - 1] == task.model.layout.eos_id  # the EOS is the last real position, and labelled
        prefix = len(task.model.layout.before) + int(n[i]) + len(task.model.layout.after)
        assert (seq.labels[i, :prefix] == IGNORE).all()  # no loss on the prompt or the audio


def test_loss_is_mean_nll_over_caption_tokens_only(task):
    b = batch_of(tone(1.0), tone(0.7, 220))
    out = task.losses(b, train=False)
    audio, n = task.model.embed_audio(b["wav"], b["lengths"])
    seq = task.model.layout.training(task.model.llm.embed, audio, n, task.model.layout.caption_ids(b["captions"], 64))
    logits = task.model.llm.model(inputs_embeds=seq.inputs_embeds, attention_mask=seq.attention_mask).logits
    expected = F.cross_entropy(
        logits[:, :-1].flatten(0, 1), seq.labels[:, 1:].flatten(), ignore_index=IGNORE, reduction="sum"
    )
    assert int(out["count"]) == int((seq.labels != IGNORE).sum()) and int(out["eos_count"]) == 2
    torch.testing.assert_close(out["nll_sum"], expected, rtol=1e-5, atol=1e-4)


def test_caption_is_cut_but_keeps_its_eos(task):
    ids = task.model.layout.caption_ids(["a b c d e f g h i j k l", ""], max_tokens=3)
    assert len(ids[0]) == 4 and ids[0][-1] == task.model.layout.eos_id
    assert ids[1] == [task.model.layout.eos_id]  # an empty caption teaches only where to stop


# -- pad token ---------------------------------------------------------------------------------
def test_tiny_tokenizer_has_a_real_pad_distinct_from_eos(task):
    tok = task.model.llm.tokenizer
    assert tok.pad_token_id is not None and tok.pad_token_id != tok.eos_token_id
    assert task.model.llm.model.config.pad_token_id == tok.pad_token_id


def _tokenizer_without_pad(eos_as_pad: bool) -> PreTrainedTokenizerFast:
    """Like Mistral's: BOS and EOS but no pad token in the vocabulary (or EOS reused as pad)."""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.train_from_iterator(
        CAPTIONS,
        trainers.BpeTrainer(
            vocab_size=300, special_tokens=["<s>", "</s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
        ),
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token="<s>", eos_token="</s>", pad_token="</s>" if eos_as_pad else None
    )


@pytest.mark.parametrize("eos_as_pad", [False, True])
def test_missing_or_eos_pad_gets_its_own_token_and_embedding_rows(eos_as_pad):
    tok = _tokenizer_without_pad(eos_as_pad)
    config = MistralConfig(
        vocab_size=len(tok),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
    )
    model = MistralForCausalLM(config)
    before_in = model.get_input_embeddings().weight.detach().clone()
    before_out = model.get_output_embeddings().weight.detach().clone()
    lm = LanguageModel(model, tok)
    assert tok.pad_token == "<pad>" and lm.pad_id == len(before_in) and lm.pad_id != lm.eos_id
    assert model.config.pad_token_id == lm.pad_id
    # the new rows are the mean of the old ones: deterministic, so a reloaded run rebuilds them exactly
    torch.testing.assert_close(model.get_input_embeddings().weight[lm.pad_id], before_in.mean(0))
    torch.testing.assert_close(model.get_output_embeddings().weight[lm.pad_id], before_out.mean(0))
    layout = PromptLayout(tok, "Describe", None)
    ids = layout.caption_ids(["A tone."], 16)[0]
    assert ids[-1] == tok.eos_token_id and lm.pad_id not in ids


def test_prefix_is_left_padded_and_generation_never_emits_pad(task):
    b = batch_of(tone(1.5), tone(0.3))
    audio, n = task.model.embed_audio(b["wav"], b["lengths"])
    assert n[0] > n[1]  # window pooling: the short clip has fewer audio positions
    seq = task.model.layout.prefix(task.model.llm.embed, audio, n)
    short = seq.attention_mask[1]
    assert not short[0] and short[-1] and short.sum() == seq.attention_mask.shape[1] - (n[0] - n[1])
    ids = task.model.generate_ids(b["wav"], b["lengths"], max_new_tokens=12)
    first_eos = [(row == task.model.layout.eos_id).nonzero()[:1] for row in ids]
    for row, eos in zip(ids, first_eos, strict=True):
        before_eos = row if not len(eos) else row[: int(eos[0])]
        assert (before_eos != task.model.layout.pad_id).all()


# -- generation ----------------------------------------------------------------------------------
def test_cached_generation_matches_the_recompute_loop_under_greedy(task):
    b = batch_of(tone(1.2, 300), tone(0.6, 1200), tone(0.9, 90))
    cached = task.model.generate_ids(b["wav"], b["lengths"], max_new_tokens=16)
    audio, n = task.model.embed_audio(b["wav"], b["lengths"])
    seq = task.model.layout.prefix(task.model.llm.embed, audio, n)
    reference = recompute_greedy(
        task.model.llm.model,
        seq.inputs_embeds,
        seq.attention_mask,
        16,
        task.model.layout.eos_id,
        task.model.layout.pad_id,
    )
    assert cached.shape == reference.shape and torch.equal(cached, reference)


def test_beam_search_and_sampling(task):
    b = batch_of(tone(1.0), tone(0.5))
    beams = task.model.caption(b["wav"], b["lengths"], max_new_tokens=8, num_beams=3, repetition_penalty=1.3)
    assert len(beams) == 2 and all(isinstance(c, str) for c in beams)
    torch.manual_seed(1)
    first = task.model.generate_ids(b["wav"], b["lengths"], max_new_tokens=8, do_sample=True, temperature=1.5, top_k=20)
    torch.manual_seed(1)
    again = task.model.generate_ids(b["wav"], b["lengths"], max_new_tokens=8, do_sample=True, temperature=1.5, top_k=20)
    assert torch.equal(first, again) and first.shape[1] <= 8
    with pytest.raises(ConfigError, match="max_new_tokens"):
        task.model.caption(b["wav"], b["lengths"], max_new_tokens=0)


def test_generate_answers_a_caption_request_one_caption_per_clip(task):
    from audiolm.audio.io import resample
    from audiolm.tasks.inference import Audio, CaptionRequest, TextResult

    model = task.model
    clips = [tone(0.8, 440), tone(0.5, 880)]
    at_8k = resample(clips[1][None], 16000, 8000)
    settings = {"max_new_tokens": 6, "min_new_tokens": 6}
    result = model.generate(CaptionRequest([Audio(clips[0][None], 16000), Audio(at_8k, 8000)], settings=settings))
    assert isinstance(result, TextResult) and len(result.texts) == 2 and all(isinstance(t, str) for t in result.texts)
    # the 8 kHz clip is resampled to Whisper's 16 kHz: the same caption as that clip given at 16 kHz
    back = resample(at_8k, 8000, 16000)[0]
    expected = model.caption(*_padded(clips[0], back), **settings)
    assert result.texts == expected
    assert model.Request is CaptionRequest
    sampled = CaptionRequest([Audio(clips[0][None], 16000)], settings={**settings, "do_sample": True}, seed=3)
    assert model.generate(sampled).texts == model.generate(sampled).texts  # seeded


def _padded(*clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    b = batch_of(*clips)
    return b["wav"], b["lengths"]


def test_model_without_its_task_loads_a_checkpoint_whose_run_trained_the_llm():
    """What ``load_model`` does: the model is built with a frozen LLM, and the checkpoint brings the LLM back."""
    task = tiny_task(train_llm=True)
    _train_steps(task)
    ckpt = _checkpoint(task)
    assert any(k.startswith("model.llm.") for k in ckpt["state_dict"])
    model = tiny_model().eval()
    model.load_weights({k.removeprefix("model."): v for k, v in ckpt["state_dict"].items()})
    b = batch_of(tone(0.8))
    assert torch.equal(
        model.generate_ids(b["wav"], b["lengths"], max_new_tokens=6),
        task.model.generate_ids(b["wav"], b["lengths"], max_new_tokens=6),
    )
    with pytest.raises(ConfigError, match="does not fit this captioner"):  # a trained LLM needs its weights
        tiny_task(train_llm=True).model.load_weights({"projector.norm.weight": torch.ones(32)})


# -- what trains, and what a checkpoint holds -----------------------------------------------------
def _train_steps(task, n: int = 2) -> None:
    opt = torch.optim.Adam([p for p in task.parameters() if p.requires_grad], lr=1e-2)
    task.train()
    for _ in range(n):
        out = task.losses(batch_of(tone(1.0), tone(0.6, 880)), train=True)
        (out["nll_sum"] / out["count"]).backward()
        opt.step()
        opt.zero_grad()
    task.eval()


def _checkpoint(task) -> dict:
    ckpt = {"state_dict": task.state_dict()}
    task.on_save_checkpoint(ckpt)  # what Lightning does before writing the file
    return ckpt


def test_lora_trains_adapters_and_projector_only_and_reloads():
    task = tiny_task(lora_rank=8)
    trainable = task.model.trainable_keys()
    assert trainable and all(k.startswith("projector.") or ".lora_" in k for k in trainable)
    assert any(".q_proj.lora_A." in k for k in trainable) and any(".v_proj.lora_B." in k for k in trainable)
    assert not any(".k_proj." in k for k in trainable)
    _train_steps(task)
    ckpt = _checkpoint(task)
    # no frozen LLM or encoder weight in the checkpoint
    assert set(ckpt["state_dict"]) == {f"model.{k}" for k in trainable}

    fresh = tiny_task(lora_rank=8).eval()  # frozen parts rebuilt from their seeds
    b = batch_of(tone(0.8))
    assert not torch.equal(
        fresh.model.generate_ids(b["wav"], b["lengths"], max_new_tokens=6, min_new_tokens=6),
        task.model.generate_ids(b["wav"], b["lengths"], max_new_tokens=6, min_new_tokens=6),
    )
    fresh.load_state_dict(ckpt["state_dict"])
    torch.testing.assert_close(fresh.losses(b, train=False)["nll_sum"], task.losses(b, train=False)["nll_sum"])
    assert torch.equal(
        fresh.model.generate_ids(b["wav"], b["lengths"], max_new_tokens=6),
        task.model.generate_ids(b["wav"], b["lengths"], max_new_tokens=6),
    )
    with pytest.raises(ConfigError, match="does not fit this captioner"):
        tiny_task(lora_rank=0, train_llm=False).load_state_dict(ckpt["state_dict"])


def test_frozen_llm_checkpoint_is_the_projector_alone():
    task = tiny_task(train_llm=False)
    assert {k.split(".")[0] for k in task.model.trainable_keys()} == {"projector"}
    task.train()
    assert not task.model.llm.training and not task.model.encoder.training  # frozen parts never drop out
    assert set(_checkpoint(task)["state_dict"]) == {f"model.{k}" for k in task.model.trainable_keys()}


# -- the encoder and its window trim ---------------------------------------------------------------
def test_padded_encoder_matches_whisper_own_forward():
    b = batch_of(tone(2.0), tone(1.0, 200))
    enc = tiny_model(trim=False).encoder
    frames, lengths = enc(b["wav"], b["lengths"])
    mel, _ = enc.features(b["wav"], b["lengths"])
    assert mel.shape[-1] == 3000 and frames.shape == (2, 1500, 32) and lengths.tolist() == [1500, 1500]
    torch.testing.assert_close(frames, enc.encoder(mel), rtol=1e-4, atol=1e-4)


def test_window_trim_shapes_and_batch_independence(task):
    enc = task.model.encoder
    long, short = tone(2.0), tone(0.55, 660)
    b = batch_of(long, short)
    frames, lengths = enc(b["wav"], b["lengths"])
    assert frames.shape == (2, 100, 32) and lengths.tolist() == [100, 28]  # 50 frames a second, even mel frames
    alone, alone_len = enc(short[None], torch.tensor([len(short)]))
    assert alone.shape == (1, 28, 32) and alone_len.tolist() == [28]
    torch.testing.assert_close(frames[1, :28], alone[0], rtol=1e-4, atol=1e-5)  # the neighbour does not leak in
    full = tone(30.0)
    trimmed, _ = enc(full[None], torch.tensor([len(full)]))
    padded, _ = tiny_model(trim=False).encoder(full[None], torch.tensor([len(full)]))
    torch.testing.assert_close(trimmed, padded, rtol=1e-4, atol=1e-4)  # a full window is the same either way


# -- bad input -------------------------------------------------------------------------------------
def test_silent_clip_gives_finite_loss_and_a_caption(task):
    b = batch_of(torch.zeros(16000), tone(0.5))
    out = task.losses(b, train=False)
    assert torch.isfinite(out["nll_sum"])
    audio, _ = task.model.embed_audio(b["wav"], b["lengths"])
    assert torch.isfinite(audio).all()
    assert len(task.model.caption(b["wav"], b["lengths"], max_new_tokens=4)) == 2


def test_clip_longer_than_whisper_window_is_refused(task):
    clip = torch.zeros(16000 * 31)
    with pytest.raises(DataError, match="31.0 s is longer than Whisper's 30 s window"):
        task.model.embed_audio(clip[None], torch.tensor([len(clip)]))


def test_lora_and_full_finetuning_are_exclusive():
    from audiolm.tasks.caption.task import CaptionTask

    with pytest.raises(ConfigError, match="choose one"):
        CaptionTask(tiny_model(), OPTIM, train_llm=True, lora={"rank": 8})


def test_lora_adapters_train_in_fp32_on_a_bf16_llm(tmp_path):
    from omegaconf import OmegaConf

    from audiolm.adapters.lora import LoraSettings
    from audiolm.exports import read_export, save_export

    model = tiny_model()
    model.llm.model.to(torch.bfloat16)
    model.adapt(LoraSettings(rank=4))  # the captioner's default targets
    adapters = {n: p for n, p in model.named_parameters() if "lora_" in n}
    assert adapters and all(p.dtype == torch.float32 and p.requires_grad for p in adapters.values())
    assert model.llm.model.model.layers[0].self_attn.q_proj.base_layer.weight.dtype == torch.bfloat16
    assert model.lora_settings.target_modules == ["q_proj", "v_proj"]  # resolved, so an export says where it goes
    # the captioner has no codec: its adapter (and model) exports carry no codec metadata
    meta, tensors = read_export(save_export(model, OmegaConf.create({}), tmp_path / "a.safetensors", adapter=True))
    assert meta["kind"] == "lora_adapter" and "codec" not in meta
    assert set(tensors) and all("lora_" in k for k in tensors)
