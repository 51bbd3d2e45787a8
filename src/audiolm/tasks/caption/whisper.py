"""The frozen Whisper audio encoder, with an option to skip the 30 s padding.

    wav [B, T] at 16 kHz --log-mel--> [B, n_mels, M] (100 Hz) --conv x2--> [B, F, D] (50 Hz)
        --blocks--> frames [B, F, D]

Whisper was trained on 30 s windows: every clip is padded with silence to 3000 mel frames and
the encoder always runs over 1500 positions. With ``trim=False`` that is what happens here, and
all 1500 frames count as the clip's (the seed recipe pools over them, padding included).

With ``trim=True`` the encoder runs only over the frames the longest clip of the batch covers
and the positional embedding is sliced to that length, as whisper.cpp's ``audio_ctx`` and the
transformers ports that drop the 3000-frame check do. Attention cost falls with the square of the
length: a 10 s clip needs a third of the positions. Shorter clips of the batch are masked out of
attention past their end and their log-mel is zero there (what the convolutions' own padding
gives), so a clip's frames are the same whatever it is batched with. The trade-off: Whisper never
saw a window without its silent tail, so trimmed features drift from the padded ones (most near
the clip's end); a projector trained on one setting should be used with the same setting.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from whisper.model import AudioEncoder, ResidualAttentionBlock

from audiolm.errors import DataError
from audiolm.tasks.caption.features import HOP_LENGTH, SAMPLE_RATE, log_mel, mel_frames


class WhisperEncoder(nn.Module):
    """A frozen openai-whisper ``AudioEncoder``:
    ``forward(wav [B, T], lengths [B]) -> frames [B, F, D], lengths [B]``."""

    sample_rate = SAMPLE_RATE

    def __init__(self, encoder: AudioEncoder, trim: bool = False):
        super().__init__()
        self.encoder, self.trim = encoder, trim
        self.encoder.requires_grad_(False)
        self.encoder.eval()
        self.n_mels = encoder.conv1.in_channels
        self.dim = encoder.conv1.out_channels
        self.max_frames = encoder.positional_embedding.shape[0]  # 1500 for every Whisper size
        self.max_samples = self.max_frames * 2 * HOP_LENGTH  # 30 s

    def train(self, mode: bool = True) -> WhisperEncoder:
        return super().train(False)  # frozen: always in inference mode

    def features(self, wav: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """wav: [B, T], lengths: [B] samples -> log-mel [B, n_mels, M] and each clip's mel frames [B]."""
        longest = int(lengths.max())
        if longest > self.max_samples:
            raise DataError(
                f"a clip of {longest / SAMPLE_RATE:.1f} s is longer than Whisper's "
                f"{self.max_samples / SAMPLE_RATE:.0f} s window; cut it into shorter clips"
            )
        # untrimmed is Whisper's way: every clip padded to 30 s, all of it the clip's
        frames = mel_frames(lengths) if self.trim else torch.full_like(lengths, self.max_frames * 2)
        wav = wav * (torch.arange(wav.shape[1], device=wav.device)[None] < lengths[:, None])  # padding is silence
        return log_mel(wav, frames, self.n_mels), frames

    @torch.no_grad()
    def forward(self, wav: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """wav: [B, T] at 16 kHz, lengths: [B] samples -> frames [B, F, D] and valid frames per clip [B]."""
        mel, mel_lengths = self.features(wav, lengths)
        enc = self.encoder
        x = F.gelu(enc.conv1(mel.to(enc.conv1.weight.dtype)))
        x = F.gelu(enc.conv2(x)).transpose(1, 2)
        n = x.shape[1]
        x = (x + enc.positional_embedding[:n]).to(x.dtype)
        frame_lengths = mel_lengths // 2
        keep = None
        if bool((frame_lengths < n).any()):
            keep = torch.arange(n, device=x.device)[None] < frame_lengths[:, None]
        for block in enc.blocks:
            x = _block(block, x, keep)
        return enc.ln_post(x), frame_lengths


def _block(block: ResidualAttentionBlock, x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
    """One Whisper encoder block with a key-padding mask (Whisper's own takes only a causal one)."""
    attn = block.attn
    h = block.attn_ln(x)
    b, n, d = h.shape
    q, k, v = (
        proj(h).view(b, n, attn.n_head, d // attn.n_head).transpose(1, 2) for proj in (attn.query, attn.key, attn.value)
    )
    mask = None if keep is None else keep[:, None, None, :]
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    x = x + attn.out(out.transpose(1, 2).reshape(b, n, d))
    return x + block.mlp(block.mlp_ln(x))
