"""Generation speed per backbone at batch 1: cached vs full recompute vs transformers' generate().

    .venv/bin/python benchmarks/generation.py [--new-tokens 1500] [--threads 2]

For each backbone (~3-5M parameters, flatten pattern over 4 x 256 codes) it prints:
- tokens/s of audiolm's cached decoding and of full recompute (the whole sequence every step);
- the per-step time at step 100 and at the last step: flat for the SSMs (a fixed-size state);
  attention still reads every key and value held, so its step grows with the position;
- the keys and values an attention step reads at the last step, next to the parameters' size
  (a step reads most of them: all but the unused rows of the embedding tables);
- tokens/s of ``transformers``' ``generate()`` on a model of the same class and size.
Figures are ratios measured in one run on one machine (the load average is printed with them);
cached decoding and ``generate()`` count the fastest of ``--repeats`` runs each, since other jobs on
a shared machine only ever add time. Results go to benchmarks/results/generation.md.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import time
from pathlib import Path

import torch
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    Mamba2Config,
    Mamba2ForCausalLM,
    MambaConfig,
    MambaForCausalLM,
)

from audiolm.backbones.kv import StaticKVCache
from audiolm.backbones.llama import LlamaBackbone
from audiolm.backbones.mamba import MambaBackbone
from audiolm.backbones.mamba2 import Mamba2Backbone
from audiolm.backbones.transformer import TransformerBackbone
from audiolm.codecs.melvq import MelVQCodec
from audiolm.generation.sampling import Sampler
from audiolm.patterns import FlattenPattern
from audiolm.tasks.lm.model import AudioLM

SIZE = {"hidden_size": 256, "num_layers": 6}
BACKBONES = {
    "mamba": (
        lambda: MambaBackbone(**SIZE),
        lambda v: MambaForCausalLM(MambaConfig(vocab_size=v, hidden_size=256, num_hidden_layers=6)),
    ),
    "mamba2": (
        lambda: Mamba2Backbone(**SIZE),
        lambda v: Mamba2ForCausalLM(
            Mamba2Config(
                vocab_size=v,
                hidden_size=256,
                num_hidden_layers=6,
                num_heads=8,
                head_dim=64,
                state_size=64,
                n_groups=1,
                chunk_size=32,
            )
        ),
    ),
    "llama": (
        lambda: LlamaBackbone(**SIZE, num_heads=4, intermediate_size=704),
        lambda v: LlamaForCausalLM(
            LlamaConfig(
                vocab_size=v,
                hidden_size=256,
                num_hidden_layers=6,
                num_attention_heads=4,
                intermediate_size=704,
                max_position_embeddings=4096,
            )
        ),
    ),
    "transformer": (
        lambda: TransformerBackbone(**SIZE, num_heads=4),
        lambda v: GPT2LMHeadModel(GPT2Config(vocab_size=v, n_embd=256, n_layer=6, n_head=4, n_positions=4096)),
    ),
}


def build_task(make_backbone) -> AudioLM:
    codec = MelVQCodec()  # only its Q and K matter here
    return AudioLM(make_backbone(), FlattenPattern, codec, sampler=Sampler()).eval()


def generate_seconds(task: AudioLM, n_frames: int, use_cache: bool, repeats: int = 1) -> float:
    """Seconds to generate ``n_frames`` frames at batch 1, the fastest of ``repeats`` runs: on a
    shared machine other jobs only ever add time."""
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        task.generate_codes(n_frames, batch_size=1, use_cache=use_cache, generator=torch.Generator().manual_seed(0))
        runs.append(time.perf_counter() - start)
    return min(runs)


def step_times(task: AudioLM, n_frames: int) -> list[float]:
    """Seconds between successive backbone calls of one cached run, one per decoding step (a separate
    run from the throughput ones, so that the timing hook does not count in them)."""
    stamps: list[float] = []
    hook = task.backbone.register_forward_pre_hook(lambda *_: stamps.append(time.perf_counter()))
    task.generate_codes(n_frames, batch_size=1, generator=torch.Generator().manual_seed(0))
    hook.remove()
    return [b - a for a, b in itertools.pairwise(stamps)]


def kv_megabytes(task: AudioLM, n_tokens: int) -> str:
    """Keys and values held after ``n_tokens`` positions (read by every attention step there), in MB."""
    cache = task.backbone.new_cache(1, n_tokens)
    if not isinstance(cache, StaticKVCache):
        return "-"
    return f"{sum(b.numel() * b.element_size() for b in cache.buffers) / 1e6:.1f}"


def hf_generate(model, n_new: int, repeats: int) -> float:
    """Seconds for ``generate()`` to sample ``n_new`` tokens, the fastest of ``repeats`` runs."""
    ids = torch.zeros(1, 1, dtype=torch.long)
    model.generate(ids, max_new_tokens=8, min_new_tokens=8, do_sample=True, top_k=0)  # warm-up
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.generate(ids, max_new_tokens=n_new, min_new_tokens=n_new, do_sample=True, top_k=0)
        runs.append(time.perf_counter() - start)
    return min(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-tokens", type=int, default=1500)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="runs of cached decoding and of generate(); the fastest counts (full recompute runs once)",
    )
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "generation.md"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    load_before = os.getloadavg()[0]
    rows = []
    for name, (make_backbone, make_hf) in BACKBONES.items():
        task = build_task(make_backbone)
        n_frames = args.new_tokens // task.pattern.n_codebooks
        n_tokens = task.pattern.num_steps(n_frames)
        generate_seconds(task, 8, use_cache=True)  # warm-up
        cached = generate_seconds(task, n_frames, use_cache=True, repeats=args.repeats)
        steps = step_times(task, n_frames)
        full = generate_seconds(task, n_frames, use_cache=False)
        at_100 = statistics.median(steps[95:105])
        at_end = statistics.median(steps[-10:])
        hf = hf_generate(make_hf(task.pattern.vocab_size + 1).eval(), n_tokens, args.repeats)
        params = sum(p.numel() for p in task.parameters())
        rows.append(
            f"| {name} | {params / 1e6:.1f}M | {n_tokens / cached:,.0f} | {n_tokens / full:,.0f} | "
            f"{full / cached:.1f}x | {at_100 * 1e3:.2f} | {at_end * 1e3:.2f} | {at_end / at_100:.2f} | "
            f"{kv_megabytes(task, n_tokens + 1)} / {params * 4 / 1e6:.0f} | {n_tokens / hf:,.0f} | "
            f"{hf / cached:.1f}x |"
        )
        print(rows[-1], flush=True)

    table = "\n".join(
        [
            f"Generation at batch 1, {args.new_tokens} new tokens, {args.threads} CPU threads, fp32; cached and "
            f"generate() the fastest of {args.repeats} runs (1-minute load average {load_before:.1f} before the run, "
            f"{os.getloadavg()[0]:.1f} after).",
            "",
            "| backbone | params | cached tok/s | full recompute tok/s | cached vs full | step ms @100 | "
            "step ms @end | end/100 | KV MB @end / params MB | HF generate() tok/s | cached vs HF |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
            *rows,
        ]
    )
    print(table)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(table + "\n")


if __name__ == "__main__":
    main()
