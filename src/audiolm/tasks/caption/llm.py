"""The causal LLM of the captioner and its tokenizer, from a local path / hub id or tiny and random.

``LanguageModel`` always carries a real pad token, distinct from EOS. Mistral ships none, and the
usual shortcut, EOS as pad with padding masked out of the loss, masks the caption's own EOS as
well: the model then never learns to stop. A missing pad token is added to the vocabulary; its
new embedding rows are the mean of the existing ones (deterministic, so a reloaded run rebuilds
exactly the rows it trained with) and generation never samples it.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    MistralConfig,
    MistralForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from audiolm.errors import MissingFileError
from audiolm.hub import why_not_download
from audiolm.tasks.caption.tokenizer import CHATML, build_tokenizer

KEY = "task.model.llm.source"
PAD = "<pad>"


class LanguageModel(nn.Module):
    """A transformers causal LM (``self.model``) with its tokenizer (``self.tokenizer``)."""

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase):
        super().__init__()
        if tokenizer.chat_template is None:  # base models: the seed's ChatML layout
            tokenizer.chat_template = CHATML
        ensure_pad_token(model, tokenizer)
        self.model, self.tokenizer = model, tokenizer
        self.hidden_size = model.config.hidden_size

    @property
    def pad_id(self) -> int:
        return self.tokenizer.pad_token_id

    @property
    def eos_id(self) -> int:
        return self.tokenizer.eos_token_id

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """ids: [...] -> embeddings [..., H]."""
        return self.model.get_input_embeddings()(ids)


def ensure_pad_token(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
    """Give ``tokenizer`` a pad token distinct from EOS, growing ``model``'s vocabulary if needed."""
    if tokenizer.pad_token_id is not None and tokenizer.pad_token_id != tokenizer.eos_token_id:
        model.config.pad_token_id = tokenizer.pad_token_id
        return
    tokenizer.add_special_tokens({"pad_token": PAD})
    old = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > old:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        with torch.no_grad():
            for table in {id(t): t for t in (model.get_input_embeddings(), model.get_output_embeddings())}.values():
                table.weight[old:] = table.weight[:old].mean(0, keepdim=True)
    model.config.pad_token_id = tokenizer.pad_token_id
    if model.generation_config is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id


def load_causal_lm(source: str, dtype: str = "bfloat16", attn_implementation: str = "sdpa") -> LanguageModel:
    """A pretrained causal LM and its tokenizer from a local folder or a hub id."""
    if not Path(source).expanduser().is_dir():
        why_not_download()  # an unreachable hub switches the process offline: no minute of retries
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(
            source, dtype=getattr(torch, dtype), attn_implementation=attn_implementation
        )
    except Exception as exc:  # noqa: BLE001 - offline or missing: the hub's own trace helps nobody here
        raise MissingFileError(
            f"could not load the LLM {source!r} ({type(exc).__name__}): it is neither a local folder nor in the "
            f"Hugging Face cache, and the hub was not reachable. It needs config.json, the tokenizer files "
            f"(tokenizer.json or tokenizer.model + tokenizer_config.json) and the *.safetensors weights. Download "
            f"it where there is network (`hf download {source} --local-dir /local/folder`) and set "
            f"{KEY}=/path/to/that/folder"
        ) from None
    return LanguageModel(model, tokenizer)


def tiny_causal_lm(
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    intermediate_size: int = 128,
    vocab_size: int = 512,
    max_positions: int = 1024,
    seed: int = 0,
    texts: list[str] | None = None,
) -> LanguageModel:
    """A random Mistral of the given size with a BPE tokenizer trained on ``texts``.

    ``texts`` defaults to what the embedded caption corpus can say, plus the prompt. Random
    weights come from ``seed``, so a frozen tiny LLM is rebuilt identically when a run is reloaded.
    """
    if texts is None:
        from audiolm.data.corpora.captions import vocabulary_texts
        from audiolm.tasks.caption.layout import DEFAULT_PROMPT, DEFAULT_SYSTEM

        texts = vocabulary_texts() + [DEFAULT_PROMPT, DEFAULT_SYSTEM]
    tokenizer = build_tokenizer(texts, vocab_size)
    config = MistralConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        max_position_embeddings=max_positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MistralForCausalLM(config)
    return LanguageModel(model, tokenizer)
