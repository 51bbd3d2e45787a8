"""The captioner's sequence: ``[prompt-before, audio embeddings, prompt-after, caption, EOS]``.

The prompt is the LLM's chat template applied to one user turn, "<prompt>\\n<AUDIO>" (after an
optional system turn), split at the audio placeholder: with Mistral-7B-OpenOrca's ChatML this is
the seed's layout, the audio inside the user turn and the assistant turn opened after it.

Training sequences are padded on the right and carry labels only on the caption and its EOS
(-100 elsewhere), so the loss never rewards predicting the prompt or the audio. Generation
prefixes are padded on the left, so every row's next token comes at the same position. Padding
uses the real pad token's embedding and is masked out of attention.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from audiolm.errors import ConfigError
from audiolm.tasks.base import IGNORE

AUDIO = "<AUDIO>"
DEFAULT_PROMPT = "Describe the sound of the given file"
DEFAULT_SYSTEM = "You are a helpful AI who follows instruction carefully"


@dataclass
class Sequences:
    """inputs_embeds: [B, L, H]; attention_mask: [B, L] (1 = real); labels: [B, L] or None.

    ``first_target``: the earliest position (over the batch) that holds a caption token.
    """

    inputs_embeds: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor | None
    first_target: int


class PromptLayout:
    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        prompt: str = DEFAULT_PROMPT,
        system_prompt: str | None = DEFAULT_SYSTEM,
    ):
        messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
        messages.append({"role": "user", "content": f"{prompt}\n{AUDIO}"})
        rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        if rendered.count(AUDIO) != 1:
            raise ConfigError(
                f"the LLM's chat template does not keep the user turn intact (rendered {rendered!r}); "
                f"set a ChatML-style template on the tokenizer"
            )
        before, after = rendered.split(AUDIO)
        before_ids = tokenizer(before, add_special_tokens=False).input_ids
        bos = tokenizer.bos_token_id
        if bos is not None and before_ids[:1] != [bos]:  # templates differ in whether they write the BOS
            before_ids = [bos] + before_ids
        self.before = torch.tensor(before_ids)
        self.after = torch.tensor(tokenizer(after, add_special_tokens=False).input_ids)
        self.tokenizer = tokenizer
        self.eos_id, self.pad_id = tokenizer.eos_token_id, tokenizer.pad_token_id

    def caption_ids(self, captions: list[str], max_tokens: int) -> list[list[int]]:
        """Each caption's ids, cut to ``max_tokens``, then EOS (an empty caption is EOS alone)."""
        ids = self.tokenizer(list(captions), add_special_tokens=False).input_ids
        return [row[:max_tokens] + [self.eos_id] for row in ids]

    def training(
        self,
        embed: Callable[[torch.Tensor], torch.Tensor],
        audio: torch.Tensor,
        audio_lengths: torch.Tensor,
        caption_ids: list[list[int]],
    ) -> Sequences:
        """audio: [B, N, H] with ``audio_lengths`` [B] valid positions -> right-padded sequences with labels."""
        return self._assemble(embed, audio, audio_lengths, caption_ids, left=False)

    def prefix(
        self, embed: Callable[[torch.Tensor], torch.Tensor], audio: torch.Tensor, audio_lengths: torch.Tensor
    ) -> Sequences:
        """audio: [B, N, H] -> left-padded generation prefixes (no caption, no labels)."""
        return self._assemble(embed, audio, audio_lengths, None, left=True)

    def _assemble(self, embed, audio, audio_lengths, caption_ids, left: bool) -> Sequences:
        device = audio.device
        before, after = embed(self.before.to(device)), embed(self.after.to(device))
        dtype = before.dtype
        texts = [torch.tensor(ids, device=device) for ids in caption_ids] if caption_ids else []
        text_embeds = embed(torch.cat(texts)).split([len(t) for t in texts]) if texts else []
        rows = []
        for i, n in enumerate(audio_lengths.tolist()):
            parts = [before, audio[i, :n].to(dtype), after] + ([text_embeds[i]] if texts else [])
            rows.append(torch.cat(parts))
        b, length = len(rows), max(len(r) for r in rows)
        pad = embed(torch.tensor([self.pad_id], device=device))[0]
        inputs = pad.expand(b, length, pad.shape[-1]).clone()
        mask = torch.zeros(b, length, dtype=torch.long, device=device)
        labels = torch.full((b, length), IGNORE, dtype=torch.long, device=device) if texts else None
        starts = []
        for i, row in enumerate(rows):
            start = length - len(row) if left else 0
            inputs[i, start : start + len(row)] = row
            mask[i, start : start + len(row)] = 1
            caption_at = start + len(row) - (len(texts[i]) if texts else 0)
            if texts:
                labels[i, caption_at : caption_at + len(texts[i])] = texts[i]
            starts.append(caption_at)
        return Sequences(inputs, mask, labels, min(starts))
