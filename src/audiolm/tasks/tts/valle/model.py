"""VALL-E: codec-LM text-to-speech with one backbone, level 0 autoregressive (AR) and levels 1..Q-1
non-autoregressive (NAR), conditioned on phonemes and a speaker prompt.

    phonemes [T] + prompt [Q, Fp] --layout--> ids [L, Q] --embed (sum of the Q ids)--> [L, H] --backbone-->
        AR:  --ar_head--> [.., K + 1] (level-0 codes and EOS), causal, cached, until EOS or the guard
        NAR: --nar_head[l]--> [.., K] (level l), one forward per level, attending both ways where it can

Classifier-free guidance runs unconditional rows (text and prompt replaced by null ids of the same
length) beside the conditional ones, in the same batch. See ``layout`` for the sequences and
``task`` for training.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from audiolm.backbones.base import Backbone
from audiolm.codecs.base import AudioCodec
from audiolm.generation.decode import decode
from audiolm.generation.sampling import Sampler
from audiolm.tasks.tts.speech import SpeechModel
from audiolm.tasks.tts.valle.layout import TokenLayout
from audiolm.text.frontend import TextFrontend

log = logging.getLogger(__name__)


class VallE(SpeechModel):
    """Args:
    backbone, codec, sampler, text, prompt_seconds: see ``SpeechModel`` (``sampler`` drives the AR pass).
    nar_temperature: sampling temperature of the NAR levels (0: greedy, as the seed found best); their
        guidance follows ``sampler``'s, so an eval-time ``sampling.cfg_scale`` reaches both passes.
    """

    def __init__(
        self,
        backbone: Backbone,
        codec: AudioCodec,
        text: TextFrontend,
        sampler: Sampler | None = None,
        prompt_seconds: float = 3.0,
        nar_temperature: float = 0.0,
    ):
        self.nar_temperature = nar_temperature
        super().__init__(backbone, codec, text, sampler, prompt_seconds)
        q, k, h = codec.n_codebooks, codec.codebook_size, backbone.hidden_size
        self.layout = TokenLayout(len(text.vocab), q, k)
        self.embedding = nn.EmbeddingBag(self.layout.size, h, mode="sum", padding_idx=0)
        self.ar_head = nn.Linear(h, k + 1, bias=False)
        self.nar_head = nn.Parameter(torch.empty(q - 1, k, h))
        for w in (self.embedding.weight, self.ar_head.weight, self.nar_head):
            nn.init.normal_(w, std=0.02)
        with torch.no_grad():
            self.embedding.weight[0].zero_()

    def use_sampler(self, sampler: Sampler) -> None:
        """The AR pass samples with ``sampler``; the NAR pass keeps its own temperature (``nar_temperature``)
        and follows the AR pass's guidance."""
        super().use_sampler(sampler)
        self.nar_sampler = Sampler(
            temperature=self.nar_temperature, cfg_scale=sampler.cfg_scale, cfg_rescale=sampler.cfg_rescale
        )

    @property
    def echo(self) -> bool:
        """NAR passes repeat the target on backbones that cannot attend both ways (see ``layout``)."""
        return not self.backbone.bidirectional

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """ids: [B, L, Q] -> [B, L, H], the sum of each stream's embedding (id 0 adds nothing)."""
        b, length, q = ids.shape
        return self.embedding(ids.reshape(-1, q)).view(b, length, -1)

    def nar_hidden(self, ids: torch.Tensor, padding_mask: torch.Tensor) -> torch.Tensor:
        """ids [B, L, Q], padding_mask [B, L] -> hidden [B, L, H] of a NAR pass."""
        if self.echo:
            return self.backbone(self.embed(ids))[0]  # right padding never reaches real positions causally
        return self.backbone.forward_bidirectional(self.embed(ids), padding_mask)

    def nar_logits(self, hidden: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
        """hidden [B, F, H], levels [B] (each in 1..Q-1) -> logits [B, F, K]."""
        return torch.einsum("bfh,bkh->bfk", hidden, self.nar_head[levels - 1])

    # -- inference -----------------------------------------------------------------------------
    def prefix_rows(
        self, level: int, phonemes: torch.Tensor, prompt: torch.Tensor | None, n: int, guided: bool
    ) -> torch.Tensor:
        """Ids [R, P, Q]: ``n`` conditional rows, then ``n`` unconditional ones when ``guided``."""
        no_prompt = prompt is None
        if no_prompt:  # a null prompt as long as training prompts, as training dropped them
            prompt = torch.zeros(self.layout.q, self.prompt_frames, dtype=torch.long)
        rows = [self.layout.prefix(level, phonemes, prompt, drop_prompt=no_prompt)] * n
        if guided:
            rows += [self.layout.prefix(level, phonemes, prompt, drop_text=True, drop_prompt=True)] * n
        return torch.stack(rows).to(self.device)

    @torch.inference_mode()
    def generate_level0(
        self,
        phonemes: torch.Tensor,
        prompt: torch.Tensor | None,
        max_frames: int,
        n: int,
        use_cache: bool = True,
        generator: torch.Generator | None = None,
    ) -> list[torch.Tensor]:
        """AR pass: ``n`` level-0 sequences [F_i] (at least one frame, at most ``max_frames``)."""
        sampler, layout = self.sampler, self.layout
        ids = self.prefix_rows(0, phonemes, prompt, n, sampler.guided)
        max_frames = self.frame_budget(ids.shape[1] + 1, max_frames, 2 if self.echo else 1)
        ranges = torch.tensor([0, layout.k + 1]).repeat(max_frames, 1, 1)  # [S, 1, 2]: codes and EOS
        ranges[0, 0, 1] = layout.k  # not EOS first: every rendition has at least one frame
        out = decode(
            lambda steps: self.embed(layout.ar_inputs(steps[..., 0])),
            self.backbone,
            lambda hidden: self.ar_head(hidden)[:, :, None],
            self.embed(ids),
            ranges,
            sampler,
            stop_id=layout.eos,
            guided=sampler.guided,
            use_cache=use_cache,
            generator=generator,
        )
        if not bool(out.stopped.all()):
            log.warning(
                "%d of %d rendition(s) reached the max duration (%d frames, %.1f s) without ending; raise "
                "max_seconds if the text is long",
                int((~out.stopped).sum()),
                n,
                max_frames,
                max_frames / self.codec.frame_rate,
            )
        return [out.steps[b, : out.lengths[b], 0] for b in range(n)]

    @torch.inference_mode()
    def generate_levels(
        self,
        phonemes: torch.Tensor,
        prompt: torch.Tensor | None,
        level0: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """NAR passes: level0 [F] -> codes [Q, F], one forward per level 1..Q-1."""
        sampler, layout = self.nar_sampler, self.layout
        codes = level0[None].cpu()
        for level in range(1, layout.q):
            prefixes = self.prefix_rows(level, phonemes, prompt, 1, sampler.guided).cpu()
            seqs = [layout.nar_sequence(p, codes, level, self.echo) for p in prefixes]
            ids = torch.stack([s for s, _ in seqs]).to(self.device)
            start, n_frames = seqs[0][1], codes.shape[1]
            hidden = self.nar_hidden(ids, torch.ones(ids.shape[:2], dtype=torch.bool, device=self.device))
            levels = torch.full((ids.shape[0],), level, device=self.device)
            logits = self.nar_logits(hidden[:, start : start + n_frames], levels)  # [R, F, K]
            if sampler.guided:
                logits = sampler.guide(logits[:1], logits[1:])
            new = sampler(logits[:1], generator=generator)[0].cpu()
            codes = torch.cat([codes, new[None]])
        return codes

    def generate_codes(
        self,
        phonemes: list[int],
        prompt: torch.Tensor | None,
        max_frames: int,
        n_samples: int = 1,
        use_cache: bool = True,
        generator: torch.Generator | None = None,
    ) -> list[torch.Tensor]:
        """AR level 0 for every rendition, then the NAR levels of each: codes [Q, F_i]."""
        ph, prompt = self.inputs(phonemes, prompt)
        level0 = self.generate_level0(ph, prompt, max_frames, n_samples, use_cache, generator)
        return [self.generate_levels(ph, prompt, l0, generator) for l0 in level0]
