"""Parallel all-codebook TTS (the seed's "v2"): every level of a frame is modelled at once.

    phonemes [B, T] --text table--> [B, T, H]     prompt [B, Q, Fp] --prompt AudioEncoder--> [B, Fp, H]
    response ids [B, F, Q] --response AudioEncoder--> [B, F, H]
      --pack (``sequence``)--> [B, L, H] --backbone--> hidden --AudioDecoder--> [B, F, Q, C]

The *mode* (``task.model.mode``, a config group) decides how the backbone runs, what it learns and
how it speaks: ``nar`` (``modes.nar.MaskedMode``): masked generative, non-causal within the
response, with a duration head and iterative demasking; ``ar`` (``modes.ar.AutoregressiveMode``):
causal, all levels of one frame per step through the shared cached decoding loop. The audio
encoder (``task.model.audio_encoder``: the seed's ``AudioEncoder`` or the summed baseline) and
decoder (``task.model.audio_decoder``: heads shared or per level) are config too.

Dropped conditions (classifier-free guidance) are null embeddings, position for position, so
conditional and unconditional rows of one text run side by side in a batch.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from audiolm.backbones.base import Backbone
from audiolm.codecs.base import AudioCodec
from audiolm.generation.sampling import Sampler
from audiolm.tasks.tts.parallel.sequence import BOS, N_SPECIAL, PROMPT_NULL, SEP, TEXT_NULL, Packed, pack
from audiolm.tasks.tts.speech import SpeechModel
from audiolm.text.frontend import TextFrontend


class ParallelTTS(SpeechModel):
    """Args:
    backbone, codec, sampler, text, prompt_seconds: see ``SpeechModel``.
    mode: builds the mode from ``hidden_size`` and ``backbone`` (a Hydra partial of ``MaskedMode`` or
        ``AutoregressiveMode``).
    audio_encoder: builds an audio encoder from ``n_levels``, ``n_ids``, ``hidden_size`` (prompt and
        response each get one).
    audio_decoder: builds the decoder from ``n_levels``, ``n_classes``, ``hidden_size``.
    """

    def __init__(
        self,
        backbone: Backbone,
        codec: AudioCodec,
        text: TextFrontend,
        mode: Callable[..., nn.Module],
        audio_encoder: Callable[..., nn.Module],
        audio_decoder: Callable[..., nn.Module],
        sampler: Sampler | None = None,
        prompt_seconds: float = 3.0,
    ):
        super().__init__(backbone, codec, text, sampler, prompt_seconds)
        q, k, h = codec.n_codebooks, codec.codebook_size, backbone.hidden_size
        self.n_levels, self.codebook_size = q, k
        self.mask_id = self.eos_id = k  # the response's extra id: the mask (NAR) or EOS fed back (AR)
        self.mode = mode(hidden_size=h, backbone=backbone)
        self.text_embedding = nn.Embedding(len(text.vocab), h)
        self.specials = nn.Embedding(N_SPECIAL, h)
        for table in (self.text_embedding, self.specials):
            nn.init.normal_(table.weight, std=0.02)
        self.prompt_encoder = audio_encoder(n_levels=q, n_ids=k, hidden_size=h)
        self.response_encoder = audio_encoder(n_levels=q, n_ids=k + 1, hidden_size=h)
        self.decoder = audio_decoder(n_levels=q, n_classes=self.mode.classes(k), hidden_size=h)

    # -- sequences -----------------------------------------------------------------------------
    def pack_ids(
        self,
        phonemes: torch.Tensor,
        phonemes_lengths: torch.Tensor,
        prompt: torch.Tensor,
        prompt_lengths: torch.Tensor,
        response: torch.Tensor,
        response_lengths: torch.Tensor,
        drop_text: torch.Tensor,
        drop_prompt: torch.Tensor,
    ) -> Packed:
        """Embed and pack a batch: phonemes [B, T], prompt codes [B, Q, Fp], response ids [B, F, Q] (id K is
        the mask / EOS), their ``*_lengths`` [B]; drop_text, drop_prompt [B] bool (null embeddings instead)."""
        d, special = self.device, self.specials.weight
        text = self.text_embedding(phonemes.to(d))
        text = torch.where(drop_text.to(d)[:, None, None], special[TEXT_NULL], text)
        prompt = self.prompt_encoder(prompt.to(d).transpose(1, 2))
        prompt = torch.where(drop_prompt.to(d)[:, None, None], special[PROMPT_NULL], prompt)
        return pack(
            text,
            phonemes_lengths,
            prompt,
            prompt_lengths,
            self.response_encoder(response.to(d)),
            response_lengths,
            special[SEP],
            special[BOS],
        )

    def pack_batch(
        self, batch: dict[str, torch.Tensor], response: torch.Tensor, drop_text: torch.Tensor, drop_prompt: torch.Tensor
    ) -> Packed:
        """A ``TTSItems`` batch packed with ``response`` ids [B, F, Q] in place of its codes."""
        return self.pack_ids(
            batch["phonemes"],
            batch["phonemes_lengths"],
            batch["prompt"],
            batch["prompt_lengths"],
            response,
            batch["codes_lengths"],
            drop_text,
            drop_prompt,
        )

    def condition(self, phonemes: torch.Tensor, prompt: torch.Tensor | None, n: int) -> dict[str, torch.Tensor]:
        """``pack_ids`` arguments (less the response) of ``n`` conditional rows speaking phonemes [T] in the voice
        of prompt [Q, Fp], then, when the sampler guides, ``n`` unconditional ones (text and prompt dropped)."""
        rows = 2 * n if self.sampler.guided else n
        drop_text = torch.arange(rows) >= n
        drop_prompt = drop_text | (prompt is None)
        if prompt is None:  # a null prompt as long as training prompts, as training dropped them
            prompt = torch.zeros(self.n_levels, self.prompt_frames, dtype=torch.long)
        return {
            "phonemes": phonemes[None].expand(rows, -1),
            "phonemes_lengths": torch.full((rows,), len(phonemes)),
            "prompt": prompt[None].expand(rows, -1, -1),
            "prompt_lengths": torch.full((rows,), prompt.shape[1]),
            "drop_text": drop_text,
            "drop_prompt": drop_prompt,
        }

    def condition_budget(self, condition: dict[str, torch.Tensor], max_frames: int) -> int:
        """``frame_budget`` after the text and prompt of ``condition`` (and their SEP and BOS)."""
        prefix = int(condition["phonemes_lengths"][0] + condition["prompt_lengths"][0]) + 2
        return self.frame_budget(prefix, max_frames)

    # -- inference -----------------------------------------------------------------------------
    def generate_codes(
        self,
        phonemes: list[int],
        prompt: torch.Tensor | None,
        max_frames: int,
        n_samples: int = 1,
        use_cache: bool = True,
        generator: torch.Generator | None = None,
    ) -> list[torch.Tensor]:
        """The mode's renditions: codes [Q, F_i] each."""
        ph, prompt = self.inputs(phonemes, prompt)
        return self.mode.generate(self, ph, prompt, max_frames, n_samples, use_cache, generator)
