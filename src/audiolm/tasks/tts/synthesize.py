"""TTS inference: AR level 0 through the shared decoding loop (cached), then one pass per NAR level.

    phonemes + prompt --AR, cached, until EOS or the max-duration guard--> level 0 [F]
                      --NAR pass l = 1..Q-1, one forward each--> codes [Q, F] --codec--> wav

Classifier-free guidance runs unconditional rows (text and prompt replaced by null ids of the same
length) beside the conditional ones, in the same batch. ``synthesize`` turns text into a waveform
with any TTS task's ``generate`` (this one's, or ``task=tts_parallel``'s): it splits long text
into sentences, speaks each, and joins them; with ``rolling_context`` the end of each spoken
sentence becomes the prompt of the next.
"""

from __future__ import annotations

import logging

import torch

from audiolm.errors import ConfigError
from audiolm.generation.decode import decode
from audiolm.text.sentences import split_sentences

log = logging.getLogger(__name__)


def _prefix_rows(task, level: int, phonemes: torch.Tensor, prompt: torch.Tensor | None, n: int,
                 guided: bool) -> torch.Tensor:
    """Ids [R, P, Q]: ``n`` conditional rows, then ``n`` unconditional ones when ``guided``."""
    no_prompt = prompt is None
    if no_prompt:  # a null prompt as long as training prompts, as training dropped them
        prompt = torch.zeros(task.layout.q, task.prompt_frames, dtype=torch.long)
    rows = [task.layout.prefix(level, phonemes, prompt, drop_prompt=no_prompt)] * n
    if guided:
        rows += [task.layout.prefix(level, phonemes, prompt, drop_text=True, drop_prompt=True)] * n
    return torch.stack(rows).to(task.device)


def frame_budget(backbone, prefix_length: int, max_frames: int, positions_per_frame: int = 1) -> int:
    """The max-duration guard, lowered to what the backbone's positions allow after ``prefix_length`` ones
    (a frame takes ``positions_per_frame``: two with echo). Shared by the TTS tasks."""
    limit = backbone.max_length
    if limit is None:
        return max_frames
    room = (limit - prefix_length) // positions_per_frame
    if room < 1:
        raise ConfigError(f"text and prompt take {prefix_length} positions, {type(backbone).__name__} accepts "
                          f"{limit}; shorten the text (it is split at sentences) or the prompt")
    if room < max_frames:
        log.warning("max duration lowered to %d frames: %s accepts %d positions", room, type(backbone).__name__, limit)
    return min(max_frames, room)


@torch.inference_mode()
def generate_level0(task, phonemes: torch.Tensor, prompt: torch.Tensor | None, max_frames: int, n: int,
                    use_cache: bool, generator: torch.Generator | None) -> list[torch.Tensor]:
    """AR pass: ``n`` level-0 sequences [F_i] (at least one frame, at most ``max_frames``)."""
    sampler, layout = task.sampler, task.layout
    ids = _prefix_rows(task, 0, phonemes, prompt, n, sampler.guided)
    max_frames = frame_budget(task.backbone, ids.shape[1] + 1, max_frames, 2 if task.echo else 1)
    ranges = torch.tensor([0, layout.k + 1]).repeat(max_frames, 1, 1)  # [S, 1, 2]: codes and EOS
    ranges[0, 0, 1] = layout.k  # not EOS first: every rendition has at least one frame
    out = decode(lambda steps: task.embed(layout.ar_inputs(steps[..., 0])), task.backbone,
                 lambda hidden: task.ar_head(hidden)[:, :, None], task.embed(ids), ranges, sampler,
                 stop_id=layout.eos, guided=sampler.guided, use_cache=use_cache, generator=generator)
    if not bool(out.stopped.all()):
        log.warning("%d of %d rendition(s) reached the max duration (%d frames, %.1f s) without ending; raise "
                    "max_seconds if the text is long", int((~out.stopped).sum()), n, max_frames,
                    max_frames / task.codec.frame_rate)
    return [out.steps[b, : out.lengths[b], 0] for b in range(n)]


@torch.inference_mode()
def generate_levels(task, phonemes: torch.Tensor, prompt: torch.Tensor | None, level0: torch.Tensor,
                    generator: torch.Generator | None) -> torch.Tensor:
    """NAR passes: level0 [F] -> codes [Q, F], one forward per level 1..Q-1."""
    sampler, layout = task.nar_sampler, task.layout
    codes = level0[None].cpu()
    for level in range(1, layout.q):
        prefixes = _prefix_rows(task, level, phonemes, prompt, 1, sampler.guided).cpu()
        seqs = [layout.nar_sequence(p, codes, level, task.echo) for p in prefixes]
        ids = torch.stack([s for s, _ in seqs]).to(task.device)
        start, n_frames = seqs[0][1], codes.shape[1]
        hidden = task.nar_hidden(ids, torch.ones(ids.shape[:2], dtype=torch.bool, device=task.device))
        levels = torch.full((ids.shape[0],), level, device=task.device)
        logits = task.nar_logits(hidden[:, start : start + n_frames], levels)  # [R, F, K]
        if sampler.guided:
            logits = sampler.guide(logits[:1], logits[1:])
        new = sampler(logits[:1], generator=generator)[0].cpu()
        codes = torch.cat([codes, new[None]])
    return codes


def generate_codes(task, phonemes: list[int], prompt: torch.Tensor | None, max_frames: int, n_samples: int = 1,
                   use_cache: bool = True, generator: torch.Generator | None = None) -> list[torch.Tensor]:
    """``n_samples`` renditions of ``phonemes`` in the voice of ``prompt`` [Q, Fp]: codes [Q, F_i] each."""
    if not phonemes:
        raise ConfigError("no phonemes to speak")
    task.eval()
    ph = torch.tensor(phonemes, dtype=torch.long)
    prompt = None if prompt is None else prompt.long().cpu()
    level0 = generate_level0(task, ph, prompt, max_frames, n_samples, use_cache, generator)
    return [generate_levels(task, ph, prompt, l0, generator) for l0 in level0]


@torch.inference_mode()
def synthesize(task, text: str, prompt: torch.Tensor | None, max_seconds: float = 20.0, max_chars: int = 200,
               rolling_context: bool = False, gap_seconds: float = 0.15,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """Text -> wav [1, T] at the codec's rate, sentence by sentence; prompt: codes [Q, Fp] or None."""
    sentences = split_sentences(text, max_chars)
    if not sentences:
        task.text.phonemes(text)  # raises the front-end's own error for empty text
    ids = [task.text.ids(s) for s in sentences]  # every sentence checked before any is spoken
    codec, pieces = task.codec, []
    gap = torch.zeros(1, int(gap_seconds * codec.sample_rate))
    max_frames = max(int(max_seconds * codec.frame_rate), 1)
    for k, (sentence, phonemes) in enumerate(zip(sentences, ids)):
        log.info("sentence %d/%d: %s", k + 1, len(sentences), sentence)
        codes = task.generate(phonemes, prompt, max_frames, generator=generator)[0]
        wav = codec.decode(codes[None].to(codec.device))[0].cpu()
        pieces += [gap, wav] if pieces else [wav]
        if rolling_context:
            prompt = codes[:, -task.prompt_frames :]
    return torch.cat(pieces, dim=-1)
