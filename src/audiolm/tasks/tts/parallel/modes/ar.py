"""The AR mode: a causal model that samples all Q levels of one frame per step.

Training is teacher-forced next-frame prediction over the sequence of ``sequence``: the output at
BOS predicts frame 0, the output at frame t predicts frame t+1, and the output at the last frame
predicts EOS in level 0 (class K; its other levels are not scored). Inference runs the shared
cached decoding loop (``generation.decode``), one frame per step, on any backbone (Mamba included),
until level 0 draws EOS or the max-duration guard; classifier-free guidance runs unconditional
rows beside the conditional ones.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import torch
from torch import nn

from audiolm.backbones.base import Backbone
from audiolm.generation.decode import decode
from audiolm.tasks.tts.parallel.losses import level_losses

if TYPE_CHECKING:  # the model builds its mode
    from audiolm.tasks.tts.parallel.model import ParallelTTS

log = logging.getLogger(__name__)


class AutoregressiveMode(nn.Module):
    """Args: hidden_size, backbone: given by the model (any backbone decodes causally). No weights of its own."""

    def __init__(self, hidden_size: int, backbone: Backbone):
        super().__init__()

    @staticmethod
    def classes(codebook_size: int) -> int:
        """Decoder classes per level: the K codes and EOS (id K, used in level 0)."""
        return codebook_size + 1

    def losses(
        self,
        model: ParallelTTS,
        batch: dict[str, torch.Tensor],
        drop_text: torch.Tensor,
        drop_prompt: torch.Tensor,
        level_weights: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        """Next-frame token losses over every level, and EOS after the last frame; see
        ``ParallelTTSTask.losses_for``."""
        codes, lengths = batch["codes"].transpose(1, 2), batch["codes_lengths"]  # [B, F, Q]
        packed = model.pack_batch(batch, codes, drop_text, drop_prompt)
        hidden, _ = model.backbone(packed.embeds)
        outputs, valid = packed.response_hidden(hidden, before=1)  # [B, F + 1, H]: BOS and every frame
        b, f, q = codes.shape
        targets = torch.cat([codes, codes.new_zeros(b, 1, q)], 1).to(model.device)
        scored = valid[..., None].expand(-1, -1, q).clone()
        end = lengths.to(model.device)
        rows = torch.arange(b, device=model.device)
        targets[rows, end, 0] = model.eos_id
        scored[rows, end, 1:] = False  # after the last frame only level 0 (EOS) is a target
        return level_losses(model.decoder(outputs), targets, scored, level_weights)

    @torch.inference_mode()
    def generate(
        self,
        model: ParallelTTS,
        phonemes: torch.Tensor,
        prompt: torch.Tensor | None,
        max_frames: int,
        n: int,
        use_cache: bool,
        generator: torch.Generator | None,
    ) -> list[torch.Tensor]:
        """``n`` renditions: codes [Q, F_i] each (at least one frame, at most ``max_frames``)."""
        condition, k, q = model.condition(phonemes, prompt, n), model.codebook_size, model.n_levels
        max_frames = model.condition_budget(condition, max_frames)
        rows = condition["drop_text"].shape[0]
        prefix = model.pack_ids(
            **condition,
            response=torch.zeros(rows, 0, q, dtype=torch.long),
            response_lengths=torch.zeros(rows, dtype=torch.long),
        )
        ranges = torch.tensor([0, k]).repeat(max_frames, q, 1)  # [S, Q, 2]
        ranges[1:, 0, 1] = k + 1  # EOS in level 0, from the second frame on: every rendition has a frame
        out = decode(
            model.response_encoder,
            model.backbone,
            model.decoder,
            prefix.embeds,
            ranges,
            model.sampler,
            stop_id=model.eos_id,
            guided=model.sampler.guided,
            use_cache=use_cache,
            generator=generator,
        )
        if not bool(out.stopped.all()):
            log.warning(
                "%d of %d rendition(s) reached the max duration (%d frames) without ending; raise "
                "max_seconds if the text is long",
                int((~out.stopped).sum()),
                n,
                max_frames,
            )
        return [out.steps[b, : out.lengths[b]].T.cpu() for b in range(n)]
