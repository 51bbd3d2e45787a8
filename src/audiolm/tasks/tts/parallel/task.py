"""Parallel all-codebook TTS (the seed's "v2"): every level of a frame is modelled at once.

    batch (phonemes [B, T], prompt [B, Q, Fp], codes [B, Q, F])
      phonemes --text table--> [B, T, H]     prompt --prompt AudioEncoder--> [B, Fp, H]
      response ids [B, F, Q] --response AudioEncoder--> [B, F, H]
      --pack (``tts_parallel.sequence``)--> [B, L, H] --backbone--> hidden --AudioDecoder--> [B, F, Q, C]

The *mode* (``task.mode``, a config group) decides how the backbone runs and what it learns:
``nar`` (``tts_parallel.nar.MaskedMode``): masked generative, non-causal within the response,
with a duration head and iterative demasking; ``ar`` (``tts_parallel.ar.AutoregressiveMode``):
causal, all levels of one frame per step through the shared cached decoding loop. The audio
encoder (``task.audio_encoder``: the seed's ``AudioEncoder`` or the summed baseline) and decoder
(``task.audio_decoder``: heads shared or per level) are config too.

An item's text and prompt are dropped (replaced by null embeddings, position for position) with
``cfg_cond_dropout_p`` / ``cfg_prom_dropout_p`` so that classifier-free guidance works at
inference. Data, text front-end, prompts, samples and synthesis are those of ``task=tts``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import lightning as L
import torch
from torch import nn

from audiolm.backbones.base import Backbone
from audiolm.codecs.base import AudioCodec
from audiolm.errors import ConfigError
from audiolm.generation.sampling import Sampler
from audiolm.tasks.optim import build_optimizer
from audiolm.tasks.tts.valle.task import SpeechTask
from audiolm.tasks.tts.valle.layout import level_probabilities
from audiolm.text.frontend import TextFrontend
from audiolm.tasks.tts.parallel.sequence import BOS, N_SPECIAL, PROMPT_NULL, SEP, TEXT_NULL, Packed, pack

LEVEL_STATS = ("nll_sum_q", "correct_q", "count_q")


class TTSParallelTask(SpeechTask, L.LightningModule):
    """Args:
        backbone, codec, sampler: the run's shared parts.
        text: the text front-end (phonemizer language and phoneme vocabulary).
        mode: builds the mode from ``hidden_size`` and ``backbone`` (a Hydra partial of
            ``MaskedMode`` or ``AutoregressiveMode``).
        audio_encoder: builds an audio encoder from ``n_levels``, ``n_ids``, ``hidden_size`` (prompt and
            response each get one).
        audio_decoder: builds the decoder from ``n_levels``, ``n_classes``, ``hidden_size``.
        optimizer, scheduler, weight_decay: see ``tasks.optim``.
        level_loss_weights: ``equal`` | ``normal`` | ``decreasing`` | Q weights: each level's weight in the
            token loss (``tts_layout.level_probabilities``, scaled to mean 1).
        cfg_cond_dropout_p, cfg_prom_dropout_p: chance that an item's text / prompt is dropped.
        prompt_seconds: prompt length in training, and of the null prompt when synthesising without one.
    """

    def __init__(self, backbone: Backbone, codec: AudioCodec, text: TextFrontend, mode: Callable[..., nn.Module],
                 audio_encoder: Callable[..., nn.Module], audio_decoder: Callable[..., nn.Module],
                 optimizer: Callable[..., torch.optim.Optimizer], scheduler: dict, weight_decay: float = 0.01,
                 sampler: Sampler | None = None, level_loss_weights: str | list[float] = "equal",
                 cfg_cond_dropout_p: float = 0.1, cfg_prom_dropout_p: float = 0.1, prompt_seconds: float = 3.0):
        super().__init__()
        self._init_speech(backbone, codec, text, optimizer, scheduler, weight_decay, sampler, cfg_cond_dropout_p,
                          cfg_prom_dropout_p, prompt_seconds)
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
        weights = level_probabilities(level_loss_weights, q) * q
        self.register_buffer("level_weights", weights, persistent=False)

    # -- sequences -----------------------------------------------------------------------------
    def pack_ids(self, phonemes: torch.Tensor, phonemes_lengths: torch.Tensor, prompt: torch.Tensor,
                 prompt_lengths: torch.Tensor, response: torch.Tensor, response_lengths: torch.Tensor,
                 drop_text: torch.Tensor, drop_prompt: torch.Tensor) -> Packed:
        """Embed and pack a batch: phonemes [B, T], prompt codes [B, Q, Fp], response ids [B, F, Q] (id K is
        the mask / EOS), their ``*_lengths`` [B]; drop_text, drop_prompt [B] bool (null embeddings instead)."""
        d, special = self.device, self.specials.weight
        text = self.text_embedding(phonemes.to(d))
        text = torch.where(drop_text.to(d)[:, None, None], special[TEXT_NULL], text)
        prompt = self.prompt_encoder(prompt.to(d).transpose(1, 2))
        prompt = torch.where(drop_prompt.to(d)[:, None, None], special[PROMPT_NULL], prompt)
        return pack(text, phonemes_lengths, prompt, prompt_lengths, self.response_encoder(response.to(d)),
                    response_lengths, special[SEP], special[BOS])

    def pack_batch(self, batch: dict[str, torch.Tensor], response: torch.Tensor, drop_text: torch.Tensor,
                   drop_prompt: torch.Tensor) -> Packed:
        """A ``TTSItems`` batch packed with ``response`` ids [B, F, Q] in place of its codes."""
        return self.pack_ids(batch["phonemes"], batch["phonemes_lengths"], batch["prompt"], batch["prompt_lengths"],
                             response, batch["codes_lengths"], drop_text, drop_prompt)

    def condition(self, phonemes: torch.Tensor, prompt: torch.Tensor | None, n: int) -> dict[str, torch.Tensor]:
        """``pack_ids`` arguments (less the response) of ``n`` conditional rows speaking phonemes [T] in the voice
        of prompt [Q, Fp], then, when the sampler guides, ``n`` unconditional ones (text and prompt dropped)."""
        rows = 2 * n if self.sampler.guided else n
        drop_text = torch.arange(rows) >= n
        drop_prompt = drop_text | (prompt is None)
        if prompt is None:  # a null prompt as long as training prompts, as training dropped them
            prompt = torch.zeros(self.n_levels, self.prompt_frames, dtype=torch.long)
        return {"phonemes": phonemes[None].expand(rows, -1), "phonemes_lengths": torch.full((rows,), len(phonemes)),
                "prompt": prompt[None].expand(rows, -1, -1), "prompt_lengths": torch.full((rows,), prompt.shape[1]),
                "drop_text": drop_text, "drop_prompt": drop_prompt}

    def frame_budget(self, condition: dict[str, torch.Tensor], max_frames: int) -> int:
        """The max-duration guard, lowered to what the backbone's positions allow after text and prompt."""
        from audiolm.tasks.tts.synthesize import frame_budget

        prefix = int(condition["phonemes_lengths"][0] + condition["prompt_lengths"][0]) + 2
        return frame_budget(self.backbone, prefix, max_frames)

    # -- training ------------------------------------------------------------------------------
    def losses(self, batch: dict[str, torch.Tensor], drop_text: torch.Tensor, drop_prompt: torch.Tensor,
               generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """``loss`` (what is optimised), per-level ``nll_sum_q{q}`` / ``correct_q{q}`` / ``count_q{q}`` and the
        mode's own scalar figures, for a batch whose items' text / prompt are dropped where drop_* [B] say."""
        return self.mode.losses(self, batch, drop_text, drop_prompt, generator)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        b = batch["codes"].shape[0]
        out = self.losses(batch, torch.rand(b) < self.cfg_cond_dropout_p, torch.rand(b) < self.cfg_prom_dropout_p)
        self._log_metrics("train", out, b)
        return out["loss"]

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        # Nothing dropped, masks from a seed per batch: the figures are repeatable across evaluations.
        b = batch["codes"].shape[0]
        keep = torch.zeros(b, dtype=torch.bool)
        self._log_metrics("val", self.losses(batch, keep, keep, torch.Generator().manual_seed(batch_idx)), b)

    def _log_metrics(self, prefix: str, out: dict[str, torch.Tensor], n_items: int) -> None:
        # Token-weighted, so epoch values are per-token figures over the corpus; val is synced across ranks.
        sync = prefix == "val"
        n = int(sum(out[f"count_q{q}"] for q in range(self.n_levels)))
        if n:
            nll = sum(out[f"nll_sum_q{q}"] for q in range(self.n_levels)) / n
            self.log(f"{prefix}/nll", nll, prog_bar=True, batch_size=n, sync_dist=sync)
            self.log(f"{prefix}/bits_per_token", nll / math.log(2), batch_size=n, sync_dist=sync)
            self.log(f"{prefix}/acc", sum(out[f"correct_q{q}"] for q in range(self.n_levels)).float() / n,
                     batch_size=n, sync_dist=sync)
        for q in range(self.n_levels):
            count = int(out[f"count_q{q}"])
            if count:
                self.log(f"{prefix}/nll_q{q}", out[f"nll_sum_q{q}"] / count, batch_size=count, sync_dist=sync)
                self.log(f"{prefix}/acc_q{q}", out[f"correct_q{q}"].float() / count, batch_size=count, sync_dist=sync)
        for key, value in out.items():  # the loss and the mode's own figures, per item
            if not key.startswith(LEVEL_STATS):
                self.log(f"{prefix}/{key}", value.detach().float(), batch_size=n_items, sync_dist=sync)

    def configure_optimizers(self) -> dict:
        return build_optimizer(self, self.optimizer, self.weight_decay, self.scheduler)

    # -- inference -----------------------------------------------------------------------------
    def generate(self, phonemes: list[int], prompt: torch.Tensor | None, max_frames: int, n_samples: int = 1,
                 use_cache: bool = True, generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """Codes [Q, F_i] for ``n_samples`` renditions of ``phonemes`` in the voice of ``prompt`` [Q, Fp]."""
        if not phonemes:
            raise ConfigError("no phonemes to speak")
        self.eval()
        prompt = None if prompt is None else prompt.long().cpu()
        return self.mode.generate(self, torch.tensor(phonemes, dtype=torch.long), prompt, max_frames, n_samples,
                                  use_cache, generator)

    def write_samples(self, datamodule, out_dir, **settings) -> dict:
        """Held-out texts spoken in held-out voices, with WER/CER and speaker similarity when models are given."""
        from audiolm.tasks.tts.samples import write_tts_samples

        return write_tts_samples(self, datamodule, out_dir, **settings)
