"""The parallel TTS model's sequence, packed from embedded segments, and its attention masks.

Each item is::

    [phonemes ...] [SEP] [prompt frames ...] [BOS] [response frames ...]
    |---- TEXT ---------| |------ PROMPT ---------| |--- RESPONSE ------|

Items of a batch are packed left-aligned (right padding). Segment ids mark where each position
belongs. The NAR mode's *segmented* mask lets a position see its own segment and the ones before
it, both ways within a segment: text sees text only, the prompt sees text and prompt, the response
sees everything. The features of text and prompt, and so the duration read at BOS, never depend
on the response, so training (response present) and inference (response not yet known) agree. The
AR mode runs the same sequence causally; BOS predicts the first frame.

Dropped conditions (classifier-free guidance) keep their lengths: the phonemes become the
``TEXT_NULL`` embedding and the prompt ``PROMPT_NULL``, position for position, so conditional and
unconditional rows of one text run side by side in a batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

TEXT_NULL, PROMPT_NULL, SEP, BOS = range(4)  # rows of the model's table of special embeddings
N_SPECIAL = 4
TEXT, PROMPT, RESPONSE, PADDING = range(4)  # segment ids


@dataclass
class Packed:
    """embeds: [B, L, H]; segments: [B, L] segment ids; bos: [B] index of each item's BOS;
    response_lengths: [B] response frames of each item (they follow BOS)."""

    embeds: torch.Tensor
    segments: torch.Tensor
    bos: torch.Tensor
    response_lengths: torch.Tensor

    @property
    def padding_mask(self) -> torch.Tensor:
        """[B, L] True on real positions."""
        return self.segments != PADDING

    def segmented_mask(self) -> torch.Tensor:
        """[B, L, L] bool, True where query i may attend key j: j is real and not in a later segment.

        Padding queries (segment id above all others) see every real key, so no row is empty.
        """
        seg = self.segments
        return (seg[:, None, :] <= seg[:, :, None]) & self.padding_mask[:, None, :]

    def response_hidden(self, hidden: torch.Tensor, before: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """hidden [B, L, H] -> its response positions, starting ``before`` positions earlier (the AR mode
        reads from BOS): [B, F_max + before, H], and valid [B, F_max + before]."""
        n = self.response_lengths.to(hidden.device) + before
        t = torch.arange(int(n.max()), device=hidden.device)
        valid = t[None] < n[:, None]
        index = torch.where(valid, self.bos.to(hidden.device)[:, None] + 1 - before + t, 0)
        return hidden.gather(1, index[..., None].expand(-1, -1, hidden.shape[-1])), valid

    def at_bos(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden [B, L, H] -> the BOS features [B, H] (the separator after the prompt)."""
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), self.bos.to(hidden.device)]


def pack(
    text: torch.Tensor,
    text_lengths: torch.Tensor,
    prompt: torch.Tensor,
    prompt_lengths: torch.Tensor,
    response: torch.Tensor,
    response_lengths: torch.Tensor,
    sep: torch.Tensor,
    bos: torch.Tensor,
) -> Packed:
    """Embedded segments (each right-padded) -> one packed sequence per item.

    text: [B, T, H], prompt: [B, Fp, H], response: [B, F, H] (F may be 0); ``*_lengths``: [B] real
    positions of each; sep, bos: [H].
    """
    b, t_max, h = text.shape
    p_max, device = prompt.shape[1], text.device
    n_text, n_prompt, n_resp = (x.to(device)[:, None] for x in (text_lengths, prompt_lengths, response_lengths))
    length = int((text_lengths + prompt_lengths + response_lengths).max()) + 2
    # One bank of every segment's positions, then each item's positions picked from it in its order.
    bank = torch.cat([text, sep.expand(b, 1, h), prompt, bos.expand(b, 1, h), response, text.new_zeros(b, 1, h)], 1)
    t = torch.arange(length, device=device)[None]
    bos_at = n_text + 1 + n_prompt
    end = bos_at + 1 + n_resp
    pieces = [  # (positions, their index in the bank, segment)
        (t < n_text, t, TEXT),
        (t == n_text, torch.full_like(t, t_max), TEXT),
        ((t > n_text) & (t < bos_at), t_max + t - n_text, PROMPT),
        (t == bos_at, torch.full_like(t, t_max + 1 + p_max), PROMPT),
        ((t > bos_at) & (t < end), t_max + p_max + 1 + t - bos_at, RESPONSE),
    ]
    index = torch.full((b, length), bank.shape[1] - 1, device=device)
    segments = torch.full((b, length), PADDING, device=device)
    for where, at, segment in pieces:
        index = torch.where(where, at, index)
        segments = torch.where(where, segment, segments)
    embeds = bank.gather(1, index[..., None].expand(-1, -1, h))
    return Packed(embeds, segments, bos_at[:, 0], response_lengths.to(device))
