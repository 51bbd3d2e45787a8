"""The audio LM: next-token prediction over codec tokens laid out by a pattern.

    codes [B, Q, F] --pattern--> steps [B, S, M] --embed--> [B, S, H] --backbone--> --head--> [B, S, M, V]

Input at position ``s`` is step ``s-1`` (a start id at ``s = 0``), so position ``s`` predicts
step ``s``. ``generate`` samples new audio, unconditionally or as the continuation of a prompt,
through the backbone's cache (``generation.decode``): recurrent state or a KV cache, never a
recomputation of the sequence.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from audiolm.backbones.base import Backbone
from audiolm.backbones.lean import dense
from audiolm.codecs.base import AudioCodec
from audiolm.errors import ConfigError
from audiolm.generation.decode import decode
from audiolm.generation.sampling import Sampler
from audiolm.patterns.base import Pattern
from audiolm.tasks.base import CodecModel
from audiolm.tasks.inference import Audio, AudioResult, ContinueRequest, generator_for


class AudioLM(CodecModel):
    """Args:
    backbone, codec, sampler: the run's shared parts (``sampler`` draws every generated step).
    pattern: builds the codebook pattern from ``n_codebooks`` and ``codebook_size``.
    """

    Request = ContinueRequest

    def __init__(
        self, backbone: Backbone, pattern: Callable[..., Pattern], codec: AudioCodec, sampler: Sampler | None = None
    ):
        super().__init__(codec)
        self.backbone = backbone
        self.pattern = pattern(n_codebooks=codec.n_codebooks, codebook_size=codec.codebook_size)
        self.use_sampler(sampler or Sampler())
        m, v, h = self.pattern.n_streams, self.pattern.vocab_size, backbone.hidden_size
        self.start_id = v  # one extra id per stream marks the start of a sequence
        self.embedding = nn.Embedding(m * (v + 1), h)
        self.register_buffer("stream_offsets", torch.arange(m) * (v + 1), persistent=False)
        self.head = nn.Linear(h, m * v, bias=False)
        nn.init.normal_(self.embedding.weight, std=0.02)
        nn.init.normal_(self.head.weight, std=0.02)

    def use_sampler(self, sampler: Sampler) -> None:
        """Sample with ``sampler`` from now on (what ``sampling.*`` sets when a run is built)."""
        if sampler.guided:
            raise ConfigError(
                f"sampling.cfg_scale={sampler.cfg_scale}: the audio LM has no condition to guide by; "
                f"keep sampling.cfg_scale=1"
            )
        self.sampler = sampler

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """ids: [B, L, M] -> [B, L, H], the sum of each stream's embedding."""
        return self.embedding(ids + self.stream_offsets).sum(dim=2)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden: [B, L, H] -> logits: [B, L, M, V]."""
        b, length, _ = hidden.shape
        return self.head(hidden).view(b, length, self.pattern.n_streams, self.pattern.vocab_size)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ids: [B, L, M] inputs -> logits [B, L, M, V] for the next step at each position."""
        hidden, _ = self.backbone(self.embed(ids))
        return self.logits(hidden)

    def with_start(self, steps: torch.Tensor) -> torch.Tensor:
        """steps: [B, S, M] -> [B, 1 + S, M] with the start id in front."""
        start = steps.new_full((steps.shape[0], 1, steps.shape[2]), self.start_id)
        return torch.cat([start, steps], dim=1)

    def check_sequence_length(self, n_frames: int) -> None:
        """Fail before training when a window of ``n_frames`` frames is longer than the backbone accepts."""
        limit, need = self.backbone.max_length, self.pattern.num_steps(n_frames) + 1
        if limit is not None and need > limit:
            raise ConfigError(
                f"data.segment_seconds gives windows of {n_frames} frames, {need} positions with "
                f"{type(self.pattern).__name__}, but {type(self.backbone).__name__} accepts {limit}; "
                f"lower data.segment_seconds or raise model.max_position_embeddings"
            )

    # -- inference -----------------------------------------------------------------------------
    def decoding_functions(self) -> tuple[Callable[[torch.Tensor], torch.Tensor], ...]:
        """``embed`` and ``logits`` as a decoding loop calls them, one step at a time: the same maps
        without nn.Module dispatch (a fixed cost per call that is noticeable in a batch-1 step), the
        head weight laid out once as [H, M * V] for ``hidden @ w``, the faster layout for single
        rows (see ``audiolm.backbones.lean``)."""
        table, offsets, head = self.embedding.weight, self.stream_offsets, dense(self.head)
        m, v = self.pattern.n_streams, self.pattern.vocab_size

        def embed(ids: torch.Tensor) -> torch.Tensor:
            if m == 1:  # one stream (offset 0): no offset to add and no sum, a view of the lookup
                return F.embedding(ids, table).squeeze(2)
            return F.embedding(ids + offsets, table).sum(dim=2)  # [B, L, M, H] -> [B, L, H]

        def logits(hidden: torch.Tensor) -> torch.Tensor:
            return torch.mm(hidden.flatten(0, 1), head).view(*hidden.shape[:2], m, v)

        return embed, logits

    @torch.inference_mode()
    def generate_codes(
        self,
        n_frames: int,
        prompt: torch.Tensor | None = None,
        batch_size: int = 1,
        use_cache: bool = True,
        generator: torch.Generator | None = None,
        progress: bool = False,
    ) -> torch.Tensor:
        """Sample codes [B, Q, n_frames]; with ``prompt`` [B, Q, Fp] the first Fp frames are the prompt's."""
        n_prompt = 0 if prompt is None else prompt.shape[-1]
        if n_prompt > n_frames:
            raise ValueError(f"prompt has {n_prompt} frames, more than the {n_frames} frames asked for")
        device, pattern = self.device, self.pattern
        b = batch_size if prompt is None else prompt.shape[0]
        known = torch.empty(b, 0, pattern.n_streams, dtype=torch.long, device=device)
        forced = None
        if prompt is not None:
            encoded = pattern.encode(prompt.to(device))
            known = encoded[:, : pattern.prefix_steps(n_prompt)]
            real = pattern.step_mask(torch.ones(b, n_prompt, dtype=torch.bool, device=device))
            forced = encoded.masked_fill(~real, -1)[
                :, known.shape[1] :
            ]  # every prompt code stays, also past the prefix
        n_steps = pattern.num_steps(n_frames)
        embed, logits = self.decoding_functions()
        out = decode(
            embed,
            self.backbone,
            logits,
            self.embed(self.with_start(known)),
            pattern.id_ranges(n_steps)[known.shape[1] :],
            self.sampler,
            forced=forced,
            use_cache=use_cache,
            generator=generator,
            progress=progress,
        )
        return pattern.decode(torch.cat([known, out.steps], dim=1))

    def generate(self, request: ContinueRequest) -> AudioResult:
        """Clips of ``request.seconds``: from nothing, or continuing the request's prompt."""
        self.eval()
        prompt = request.prompt
        if isinstance(prompt, Audio):
            prompt = self.encode_audio(prompt)
        if prompt is not None and prompt.dim() == 2:
            prompt = prompt[None].expand(request.n, -1, -1)
        n_frames = self.seconds_to_frames(request.seconds)
        codes = self.generate_codes(
            n_frames,
            prompt=prompt,
            batch_size=request.n,
            use_cache=request.use_cache,
            generator=generator_for(request.seed, self.device),
            progress=request.progress,
        ).cpu()
        prompt_seconds = 0.0 if prompt is None else prompt.shape[-1] / self.codec.frame_rate
        return AudioResult([self.decode_codes(c) for c in codes], list(codes), prompt_seconds)
