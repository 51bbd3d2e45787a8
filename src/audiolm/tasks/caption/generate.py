"""Caption decoding: KV-cached generation through transformers, and the seed's recompute loop as reference.

The captioner generates with ``model.generate(inputs_embeds=prefix)``: the audio + prompt prefix
runs through the LLM once, then each new token is one cached step. Greedy, sampling and beam
search, ``max_new_tokens`` and ``repetition_penalty`` are transformers' own. The pad token is
never generated (it is not a word, and a frozen LLM has never seen its new row).

``recompute_greedy`` is the seed's sampler done greedily: every step re-embeds the whole
sequence and runs the full forward pass again. It exists as the reference that the test and
the benchmark compare the cached path against.
"""

from __future__ import annotations

import warnings

import torch
from transformers import GenerationConfig, PreTrainedModel

from audiolm.errors import ConfigError


def generation_config(
    eos_id: int,
    pad_id: int,
    max_new_tokens: int = 64,
    num_beams: int = 1,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_k: int = 50,
    top_p: float = 1.0,
    repetition_penalty: float = 1.0,
    min_new_tokens: int = 0,
) -> GenerationConfig:
    """Greedy (default), sampling (``do_sample``) or beam search (``num_beams > 1``)."""
    if max_new_tokens < 1 or num_beams < 1 or repetition_penalty <= 0:
        raise ConfigError(
            f"eval.max_new_tokens and eval.num_beams must be >= 1 and eval.repetition_penalty > 0, got "
            f"{max_new_tokens}, {num_beams}, {repetition_penalty}"
        )
    sampling = dict(temperature=temperature, top_k=top_k, top_p=top_p) if do_sample else {}
    return GenerationConfig(
        max_new_tokens=max_new_tokens,
        min_new_tokens=min_new_tokens,
        num_beams=num_beams,
        do_sample=do_sample,
        repetition_penalty=repetition_penalty,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
        suppress_tokens=[pad_id],
        **sampling,
    )


@torch.inference_mode()
def cached_generate(
    model: PreTrainedModel, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor, config: GenerationConfig
) -> torch.Tensor:
    """inputs_embeds: [B, L, H] left-padded prefix, attention_mask: [B, L] -> new ids [B, <= max_new_tokens]."""
    with warnings.catch_warnings():
        # transformers warns that the repetition penalty then spares the prompt: that is what it should do
        warnings.filterwarnings("ignore", message="Passing `repetition_penalty` with `inputs_embeds`")
        return model.generate(inputs_embeds=inputs_embeds, attention_mask=attention_mask, generation_config=config)


@torch.inference_mode()
def recompute_greedy(
    model: PreTrainedModel,
    inputs_embeds: torch.Tensor,
    attention_mask: torch.Tensor,
    max_new_tokens: int,
    eos_id: int,
    pad_id: int,
    stop_at_eos: bool = True,
) -> torch.Tensor:
    """The seed-style loop: no cache, the full sequence every step. Same arguments and result as above."""
    embed = model.get_input_embeddings()
    seq, mask = inputs_embeds, attention_mask
    done = torch.zeros(seq.shape[0], dtype=torch.bool, device=seq.device)
    out = []
    for _ in range(max_new_tokens):
        positions = (mask.cumsum(-1) - 1).clamp(min=0)  # left padding: each row counts from its first real token
        logits = (
            model(inputs_embeds=seq, attention_mask=mask, position_ids=positions, use_cache=False, logits_to_keep=1)
            .logits[:, -1]
            .float()
        )
        logits[:, pad_id] = float("-inf")
        token = logits.argmax(-1)
        token = torch.where(done, torch.full_like(token, pad_id), token)
        out.append(token)
        if stop_at_eos:
            done |= token == eos_id
            if bool(done.all()):
                break
        seq = torch.cat([seq, embed(token)[:, None]], dim=1)
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
    return torch.stack(out, dim=1)
