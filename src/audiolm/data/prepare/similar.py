"""Mine, for every utterance, the most similar utterances of the same speaker (prompt sampling).

The seed found that prompting with a similar utterance makes the model follow the prompt's voice
more closely. Similarity here is the cosine between MFCC statistics (mean and standard deviation
of 20 coefficients over the utterance), a cheap summary of timbre and recording conditions that
needs no pretrained model.
"""

from __future__ import annotations

from collections import defaultdict

import torch
import torchaudio

from audiolm.audio.io import load_audio
from audiolm.data.manifest import Utterance

SAMPLE_RATE = 16000


def mfcc_summary(wav: torch.Tensor, mfcc: torchaudio.transforms.MFCC) -> torch.Tensor:
    """wav: [1, T] at 16 kHz -> [2 * n_mfcc]: per-coefficient mean and standard deviation."""
    feats = mfcc(wav)[0]  # [n_mfcc, frames]
    return torch.cat([feats.mean(-1), feats.std(-1, unbiased=False)])


def similar_utterances(rows: list[Utterance], k: int) -> list[list[str]]:
    """For each row (absolute ``path``), the ids of up to ``k`` most similar rows of its speaker, best first.

    Rows without a speaker have no neighbours. Each file is read once.
    """
    mfcc = torchaudio.transforms.MFCC(
        sample_rate=SAMPLE_RATE, n_mfcc=20, melkwargs={"n_fft": 400, "hop_length": 160, "n_mels": 40}
    )
    by_speaker: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        if r.speaker:
            by_speaker[r.speaker].append(i)
    out: list[list[str]] = [[] for _ in rows]
    for members in by_speaker.values():
        if len(members) < 2:
            continue
        feats = torch.stack(
            [
                mfcc_summary(load_audio(rows[i].path, SAMPLE_RATE, rows[i].offset, rows[i].duration), mfcc)
                for i in members
            ]
        )
        feats = (feats - feats.mean(0)) / feats.std(0, unbiased=False).clamp_min(1e-6)  # each statistic weighs alike
        feats = torch.nn.functional.normalize(feats, dim=-1)
        sim = feats @ feats.T
        sim.fill_diagonal_(float("-inf"))
        best = sim.topk(min(k, len(members) - 1), dim=-1).indices
        for row, picks in zip(members, best.tolist(), strict=True):
            out[row] = [rows[members[j]].id for j in picks]
    return out
