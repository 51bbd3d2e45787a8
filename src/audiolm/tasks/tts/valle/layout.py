"""The TTS model's input sequences, in one id space so that embedding them is one lookup.

Every position holds Q ids ``[L, Q]`` (one per stream) whose embeddings are summed; id 0 is the
empty id (a zero vector). A sequence is::

    [level l] [phonemes ...] [SEP] [prompt frames ...] [BOS] [target frames ...]

- ``level l``: which codebook level the pass predicts; 0 is the AR pass, 1..Q-1 the NAR passes.
- prompt frames: all Q levels of the speaker prompt, one id per stream.
- AR target frames: level-0 codes (inputs ``t_0..t_{F-1}``; outputs from BOS on predict
  ``t_0..t_{F-1}, EOS``).
- NAR target frames at level l: the codes of levels ``< l`` in streams ``0..l-1``; the outputs
  at the target frames predict level ``l``. On a backbone that attends both ways, one pass sees
  the whole sequence. A causal backbone (Mamba) gets the target twice (``echo``): outputs on the
  second copy predict level l, each having seen every frame's lower levels through the first.
- Dropped conditions (classifier-free guidance): the phonemes become ``TEXT_NULL`` and the prompt
  ``PROMPT_NULL`` ids, position for position, so conditional and unconditional sequences have the
  same length and run as rows of one batch.

The AR level 0 has its own table, apart from the NAR inputs' level 0 (the seed found sharing them
hurt), and prompts have their own tables too.
"""

from __future__ import annotations

import torch

from audiolm.errors import ConfigError

EMPTY, TEXT_NULL, PROMPT_NULL, SEP, BOS = range(5)
N_SPECIAL = 5


class TokenLayout:
    """Id sections for ``n_phonemes`` phoneme ids and Q levels of K codes.

    Sections, in order: specials, Q level ids, phonemes, AR (K codes + EOS), prompt (Q x K),
    NAR inputs ((Q - 1) x K).
    """

    def __init__(self, n_phonemes: int, n_codebooks: int, codebook_size: int):
        self.n_phonemes, self.q, self.k = n_phonemes, n_codebooks, codebook_size
        self.level0 = N_SPECIAL
        self.phoneme0 = self.level0 + n_codebooks
        self.ar0 = self.phoneme0 + n_phonemes
        self.eos = codebook_size  # as an AR class; its id is ar0 + eos
        self.prompt0 = self.ar0 + codebook_size + 1
        self.nar0 = self.prompt0 + n_codebooks * codebook_size
        self.size = self.nar0 + (n_codebooks - 1) * codebook_size

    def _rows(self, n: int, stream0: torch.Tensor | int) -> torch.Tensor:
        rows = torch.zeros(n, self.q, dtype=torch.long)
        rows[:, 0] = stream0
        return rows

    def prefix(
        self,
        level: int,
        phonemes: torch.Tensor,
        prompt: torch.Tensor,
        drop_text: bool = False,
        drop_prompt: bool = False,
    ) -> torch.Tensor:
        """Ids [L, Q] of ``[level] [phonemes] [SEP] [prompt] [BOS]``; phonemes: [T], prompt: [Q, Fp]."""
        text = self._rows(len(phonemes), TEXT_NULL if drop_text else phonemes + self.phoneme0)
        if drop_prompt:
            prom = self._rows(prompt.shape[1], PROMPT_NULL)
        else:
            offsets = self.prompt0 + torch.arange(self.q)[:, None] * self.k
            prom = (prompt + offsets).T
        return torch.cat([self._rows(1, self.level0 + level), text, self._rows(1, SEP), prom, self._rows(1, BOS)])

    def ar_inputs(self, level0: torch.Tensor) -> torch.Tensor:
        """level-0 codes (or EOS) [..., F] -> ids [..., F, Q] of AR target frames."""
        ids = torch.zeros(*level0.shape, self.q, dtype=torch.long, device=level0.device)
        ids[..., 0] = level0 + self.ar0
        return ids

    def nar_inputs(self, codes: torch.Tensor, level: int) -> torch.Tensor:
        """codes [Q', F] (Q' >= level) -> ids [F, Q] holding levels ``< level`` of NAR target frames."""
        ids = torch.zeros(codes.shape[1], self.q, dtype=torch.long, device=codes.device)
        offsets = self.nar0 + torch.arange(level, device=codes.device)[:, None] * self.k
        ids[:, :level] = (codes[:level] + offsets).T
        return ids

    def nar_sequence(
        self, prefix: torch.Tensor, codes: torch.Tensor, level: int, echo: bool
    ) -> tuple[torch.Tensor, int]:
        """prefix [P, Q] + NAR target frames -> (ids [L, Q], index of the first predicting position).

        With ``echo`` the target frames come twice, the second time after another BOS.
        """
        target = self.nar_inputs(codes, level)
        if not echo:
            return torch.cat([prefix, target]), prefix.shape[0]
        again = torch.cat([prefix, target, self._rows(1, BOS)])
        return torch.cat([again, target]), again.shape[0]


def _half_normal(n_levels: int) -> torch.Tensor:
    levels = torch.arange(n_levels, dtype=torch.float64)
    return torch.exp(-levels.square() / (2 * (n_levels / 2) ** 2))


LEVEL_WEIGHTS = {
    "equal": lambda q: torch.ones(q, dtype=torch.float64),
    "normal": _half_normal,
    "decreasing": lambda q: torch.arange(q, 0, -1, dtype=torch.float64),
}


def level_probabilities(spec: str | list[float], n_levels: int) -> torch.Tensor:
    """``rvq_levels_p`` -> probabilities [Q] of training each level in a step.

    ``equal``: uniform. ``normal``: a half-normal over the levels (sigma Q/2), so the coarse levels,
    which carry most of the waveform, train most and the finest still about a fifth as often as the
    AR level. ``decreasing``: proportional to ``Q - l``. A list gives Q weights.
    """
    if isinstance(spec, str):
        if spec not in LEVEL_WEIGHTS:
            raise ConfigError(
                f"task.rvq_levels_p must be one of {sorted(LEVEL_WEIGHTS)} or a list of {n_levels} "
                f"weights, got {spec!r}"
            )
        weights = LEVEL_WEIGHTS[spec](n_levels)
    else:
        weights = torch.tensor(list(spec), dtype=torch.float64)
        if weights.shape != (n_levels,) or (weights < 0).any() or weights.sum() <= 0:
            raise ConfigError(
                f"task.rvq_levels_p as a list needs {n_levels} non-negative weights (one per codec "
                f"level) with a positive sum, got {list(spec)}"
            )
    return (weights / weights.sum()).float()
