"""The audio captioner: frozen Whisper encoder -> trainable projector -> causal LLM (frozen, LoRA or trained).

    wav [B, T] --encoder--> frames [B, F, D] --projector--> audio [B, N, H]
    [prompt-before, audio, prompt-after] --LLM (KV-cached generate)--> caption ids --tokenizer--> text

As built, only the projector trains: the encoder freezes itself, and the LLM is frozen here.
LoRA adapters on the LLM come from ``adapt``; training the whole LLM (small random ones that know
no language yet) is the task's ``train_llm``. Checkpoints hold only what trained, so the frozen
parts are rebuilt from their config (pretrained weights, or a seed for random ones) and
``load_weights`` takes the rest.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from audiolm.adapters.lora import LoraSettings, add_lora
from audiolm.errors import ConfigError
from audiolm.tasks.base import Model
from audiolm.tasks.caption.features import SAMPLE_RATE
from audiolm.tasks.caption.generate import cached_generate, generation_config
from audiolm.tasks.caption.layout import DEFAULT_PROMPT, DEFAULT_SYSTEM, PromptLayout
from audiolm.tasks.caption.llm import LanguageModel
from audiolm.tasks.caption.projector import Projector
from audiolm.tasks.caption.whisper import WhisperEncoder
from audiolm.tasks.inference import CaptionRequest, TextResult


class Captioner(Model):
    """Args:
    encoder: the frozen Whisper encoder (``task.model.encoder``).
    projector: builds the projector from ``in_dim`` (encoder width) and ``out_dim`` (LLM width).
    llm: the causal LLM and its tokenizer (``task.model.llm``).
    prompt, system_prompt: the user turn around the audio, and the optional system turn.
    max_caption_tokens: training captions are cut to this many tokens (their EOS stays).
    """

    Request = CaptionRequest
    lora_defaults = ("q_proj", "v_proj")  # SALMONN's, SLAM-LLM's

    def __init__(
        self,
        encoder: WhisperEncoder,
        projector: Callable[..., Projector],
        llm: LanguageModel,
        prompt: str = DEFAULT_PROMPT,
        system_prompt: str | None = DEFAULT_SYSTEM,
        max_caption_tokens: int = 128,
    ):
        super().__init__()
        self.encoder, self.llm = encoder, llm
        self.projector = projector(in_dim=encoder.dim, out_dim=llm.hidden_size)
        self.llm.requires_grad_(False)
        self.layout = PromptLayout(llm.tokenizer, prompt, system_prompt)
        self.max_caption_tokens = max_caption_tokens

    @property
    def lora_module(self) -> nn.Module:
        return self.llm.model

    def adapt(self, settings: LoraSettings) -> None:
        """Adapters on the frozen LLM; unlike the base, the projector keeps training beside them."""
        self.llm.requires_grad_(False)
        add_lora(self.lora_module, settings, self.lora_defaults)
        self.lora_settings = settings

    def trainable_keys(self) -> set[str]:
        return {name for name, p in self.named_parameters() if p.requires_grad}

    def load_weights(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Load what a checkpoint holds: the weights its run trained; the frozen ones stay as built.

        Every weight that trains here must be there (the projector, LoRA adapters, the LLM where the
        task trains it). Frozen weights a checkpoint also holds are loaded too: that is how a run with
        ``task.train_llm=true`` brings back its LLM into a model built without the task (``load_model``),
        where the LLM is frozen. A model cannot tell that run from a frozen-LLM one by itself, and the
        checkpoint's keys already say which it was, so no training flag has to reach the model.
        """
        unexpected = set(state_dict) - set(self.state_dict())
        missing = self.trainable_keys() - set(state_dict)
        if unexpected or missing:
            raise ConfigError(
                f"the checkpoint does not fit this captioner: {len(missing)} trainable weight(s) "
                f"missing (e.g. {sorted(missing)[:3]}), {len(unexpected)} unknown (e.g. "
                f"{sorted(unexpected)[:3]}). Was it trained with other task.model.projector / task.lora "
                f"/ task.train_llm settings?"
            )
        self.load_state_dict(state_dict, strict=False)

    # -- the forward pieces --------------------------------------------------------------------
    def embed_audio(self, wav: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """wav: [B, T] at 16 kHz, lengths: [B] samples -> audio embeddings [B, N, H] and valid positions [B]."""
        frames, frame_lengths = self.encoder(wav, lengths)
        return self.projector(frames, frame_lengths)

    # -- inference -----------------------------------------------------------------------------
    @torch.inference_mode()
    def generate_ids(self, wav: torch.Tensor, lengths: torch.Tensor, **settings) -> torch.Tensor:
        """New token ids [B, <= max_new_tokens] (pad after EOS); ``settings``: see ``generate.generation_config``."""
        audio, audio_lengths = self.embed_audio(wav, lengths)
        seq = self.layout.prefix(self.llm.embed, audio, audio_lengths)
        config = generation_config(self.layout.eos_id, self.layout.pad_id, **settings)
        return cached_generate(self.llm.model, seq.inputs_embeds, seq.attention_mask, config)

    def caption(self, wav: torch.Tensor, lengths: torch.Tensor, **settings) -> list[str]:
        """wav: [B, T] at 16 kHz, lengths: [B] samples -> one caption per clip."""
        ids = self.generate_ids(wav, lengths, **settings)
        return [text.strip() for text in self.llm.tokenizer.batch_decode(ids, skip_special_tokens=True)]

    def generate(self, request: CaptionRequest) -> TextResult:
        """One caption per clip of ``request.audio`` (any rate: each is resampled to Whisper's 16 kHz)."""
        from audiolm.audio.io import resample

        if not request.audio:
            raise ValueError("CaptionRequest.audio is empty: give at least one Audio clip")
        self.eval()
        clips = [resample(a.wav, a.sample_rate, SAMPLE_RATE)[0] for a in request.audio]
        lengths = torch.tensor([len(c) for c in clips])
        wav = torch.zeros(len(clips), int(lengths.max()))
        for i, clip in enumerate(clips):
            wav[i, : len(clip)] = clip
        if request.seed is not None:
            torch.manual_seed(request.seed)  # transformers' generate samples from the global generator
        return TextResult(self.caption(wav.to(self.device), lengths.to(self.device), **request.settings))
