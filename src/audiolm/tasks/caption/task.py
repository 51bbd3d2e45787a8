"""The audio captioner: frozen Whisper encoder -> trainable projector -> causal LLM (frozen, LoRA or trained).

    wav [B, T] --encoder--> frames [B, F, D] --projector--> audio [B, N, H]
    [prompt-before, audio, prompt-after, caption, EOS] --LLM--> loss on caption + EOS only

What trains is the projector, plus LoRA adapters (``lora``) or the whole LLM (``train_llm``, for
small random LLMs that know no language yet). Checkpoints hold only what trains: a run on a 7B
LLM saves megabytes, and the frozen parts are rebuilt from their config (pretrained weights, or a
seed for random ones) when the run is resumed or evaluated.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F

from audiolm.adapters.lora import LoraSettings, add_lora
from audiolm.tasks.caption.whisper import WhisperEncoder
from audiolm.tasks.caption.generate import cached_generate, generation_config
from audiolm.tasks.caption.layout import DEFAULT_PROMPT, DEFAULT_SYSTEM, IGNORE, PromptLayout
from audiolm.tasks.caption.llm import LanguageModel
from audiolm.tasks.caption.projector import Projector
from audiolm.errors import ConfigError
from audiolm.tasks.caption.samples import write_caption_samples
from audiolm.tasks.optim import build_optimizer


class CaptionTask(L.LightningModule):
    def __init__(
        self,
        encoder: WhisperEncoder,
        llm: LanguageModel,
        projector: Callable[..., Projector],
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: dict,
        weight_decay: float = 0.0,
        prompt: str = DEFAULT_PROMPT,
        system_prompt: str | None = DEFAULT_SYSTEM,
        train_llm: bool = False,
        lora: dict | None = None,
        max_caption_tokens: int = 128,
    ):
        super().__init__()
        self.lora_settings = LoraSettings(**lora) if lora and lora.get("rank") else None  # rank 0: no adapters
        if train_llm and self.lora_settings is not None:
            raise ConfigError("task.train_llm=true trains the whole LLM, task.lora adds adapters to a frozen one: "
                              "choose one (task.lora.rank=0 or task.train_llm=false)")
        self.encoder, self.llm = encoder, llm
        self.projector = projector(in_dim=encoder.dim, out_dim=llm.hidden_size)
        self.llm.requires_grad_(train_llm)
        if self.lora_settings is not None:
            add_lora(self.llm.model, self.lora_settings, defaults=("q_proj", "v_proj"))  # SALMONN's, SLAM-LLM's
        self.llm_trains = train_llm or self.lora_settings is not None
        self.layout = PromptLayout(llm.tokenizer, prompt, system_prompt)
        self.optimizer, self.scheduler, self.weight_decay = optimizer, dict(scheduler), weight_decay
        self.max_caption_tokens = max_caption_tokens

    @property
    def lora_module(self) -> torch.nn.Module:
        """Where LoRA adapters go (``backbones.lora``)."""
        return self.llm.model

    def train(self, mode: bool = True) -> CaptionTask:
        super().train(mode)
        if not self.llm_trains:
            self.llm.eval()  # frozen: no dropout
        return self

    # -- model ---------------------------------------------------------------------------------
    def embed_audio(self, wav: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """wav: [B, T] at 16 kHz, lengths: [B] samples -> audio embeddings [B, N, H] and valid positions [B]."""
        frames, frame_lengths = self.encoder(wav, lengths)
        return self.projector(frames, frame_lengths)

    def step_losses(self, batch: dict) -> dict[str, torch.Tensor]:
        """Summed NLL, correct predictions and counts over caption tokens (and over the EOS alone)."""
        audio, audio_lengths = self.embed_audio(batch["wav"], batch["lengths"])
        ids = self.layout.caption_ids(batch["captions"], self.max_caption_tokens)
        seq = self.layout.training(self.llm.embed, audio, audio_lengths, ids)
        start = seq.first_target - 1  # the position that predicts the first caption token
        length = seq.inputs_embeds.shape[1]
        logits = self.llm.model(inputs_embeds=seq.inputs_embeds, attention_mask=seq.attention_mask, use_cache=False,
                                logits_to_keep=length - start).logits[:, :-1]
        targets = seq.labels[:, start + 1 :]
        real = targets != IGNORE
        nll = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE, reduction="sum")
        correct = (logits.detach().argmax(-1) == targets) & real
        is_eos = real & (targets == self.layout.eos_id)
        return {"nll_sum": nll, "count": real.sum(), "correct": correct.sum(),
                "eos_correct": (correct & is_eos).sum(), "eos_count": is_eos.sum()}

    def _log_metrics(self, prefix: str, out: dict[str, torch.Tensor]) -> torch.Tensor:
        n, sync = max(int(out["count"]), 1), prefix == "val"
        loss = out["nll_sum"] / n
        self.log(f"{prefix}/nll", loss, prog_bar=True, batch_size=n, sync_dist=sync)
        self.log(f"{prefix}/acc", out["correct"].float() / n, batch_size=n, sync_dist=sync)
        # How often the model ends the caption where the reference does: the pad-token test.
        n_eos = max(int(out["eos_count"]), 1)
        self.log(f"{prefix}/stop_acc", out["eos_correct"].float() / n_eos, batch_size=n_eos, sync_dist=sync)
        return loss

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self._log_metrics("train", self.step_losses(batch))

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._log_metrics("val", self.step_losses(batch))

    def configure_optimizers(self) -> dict:
        return build_optimizer(self, self.optimizer, self.weight_decay, self.scheduler)

    # -- checkpoints hold only what trains -----------------------------------------------------
    def trainable_keys(self) -> set[str]:
        return {name for name, p in self.named_parameters() if p.requires_grad}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        keep = self.trainable_keys()
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k in keep}

    def load_state_dict(self, state_dict: dict[str, torch.Tensor], strict: bool = True, assign: bool = False):
        """Load the trainable weights a checkpoint holds; the frozen ones stay as built."""
        unexpected = set(state_dict) - set(self.state_dict())
        missing = self.trainable_keys() - set(state_dict)
        if strict and (unexpected or missing):
            raise ConfigError(f"the checkpoint does not fit this captioner: {len(missing)} trainable weight(s) missing "
                              f"(e.g. {sorted(missing)[:3]}), {len(unexpected)} unknown (e.g. {sorted(unexpected)[:3]}). "
                              f"Was it trained with other task.projector / task.lora / task.train_llm settings?")
        return super().load_state_dict(state_dict, strict=False, assign=assign)

    # -- captioning ----------------------------------------------------------------------------
    @torch.inference_mode()
    def generate_ids(self, wav: torch.Tensor, lengths: torch.Tensor, **settings) -> torch.Tensor:
        """New token ids [B, <= max_new_tokens] (pad after EOS); ``settings`` as ``generation_config``."""
        audio, audio_lengths = self.embed_audio(wav, lengths)
        seq = self.layout.prefix(self.llm.embed, audio, audio_lengths)
        config = generation_config(self.layout.eos_id, self.layout.pad_id, **settings)
        return cached_generate(self.llm.model, seq.inputs_embeds, seq.attention_mask, config)

    def caption(self, wav: torch.Tensor, lengths: torch.Tensor, **settings) -> list[str]:
        """wav: [B, T] at 16 kHz, lengths: [B] samples -> one caption per clip."""
        ids = self.generate_ids(wav, lengths, **settings)
        return [text.strip() for text in self.llm.tokenizer.batch_decode(ids, skip_special_tokens=True)]

    def write_samples(self, datamodule, out_dir: Path, **settings) -> dict:
        """Caption held-out clips; predictions beside references, caption metrics (see ``caption_samples``)."""
        return write_caption_samples(self, datamodule, Path(out_dir), **settings)
