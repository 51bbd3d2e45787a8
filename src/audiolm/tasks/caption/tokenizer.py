"""A small byte-level BPE tokenizer built offline, for the tiny random LLMs of tests and CPU demos.

It behaves like the tokenizer of a real chat LLM where it matters here: a ChatML chat template
(Mistral-7B-OpenOrca's), ``<|im_end|>`` as EOS, a BOS, and a real ``<pad>`` distinct from EOS.
Byte-level BPE encodes any text (unseen words fall back to bytes) and decodes it exactly.
Training is deterministic, so the same texts always give the same ids.
"""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
PAD, BOS, EOS, TURN = "<pad>", "<s>", "<|im_end|>", "<|im_start|>"


def build_tokenizer(texts: list[str], vocab_size: int = 512) -> PreTrainedTokenizerFast:
    """Byte-level BPE with ``vocab_size`` entries (at most), trained on ``texts``."""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, BOS, EOS, TURN],
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator(texts + ["system", "user", "assistant"], trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token=BOS, eos_token=EOS, pad_token=PAD, additional_special_tokens=[TURN]
    )
    tokenizer.chat_template = CHATML
    return tokenizer
