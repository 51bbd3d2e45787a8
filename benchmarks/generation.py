"""Generation speed per backbone at batch 1: cached vs full recompute vs transformers' generate().

    .venv/bin/python benchmarks/generation.py [--new-tokens 1500] [--threads 2]

For each backbone (~3-5M parameters, flatten pattern over 4 x 256 codes) it prints:
- tokens/s of audiolm's cached decoding and of full recompute (the whole sequence every step);
- the per-step time at step 100 and at the last step (flat means the prefix is never recomputed);
- tokens/s of ``transformers``' ``generate()`` on a model of the same class and size.
Figures are ratios measured in one run on one machine; results go to benchmarks/results/generation.md.
"""

from __future__ import annotations

import argparse
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

from audiolm.backbones.llama import LlamaBackbone
from audiolm.backbones.mamba import MambaBackbone
from audiolm.backbones.mamba2 import Mamba2Backbone
from audiolm.backbones.transformer import TransformerBackbone
from audiolm.codecs.melvq import MelVQCodec
from audiolm.generation.sampling import Sampler
from audiolm.patterns import FlattenPattern
from audiolm.tasks.lm import AudioLMTask

SIZE = {"hidden_size": 256, "num_layers": 6}
BACKBONES = {
    "mamba": (lambda: MambaBackbone(**SIZE),
              lambda v: MambaForCausalLM(MambaConfig(vocab_size=v, hidden_size=256, num_hidden_layers=6))),
    "mamba2": (lambda: Mamba2Backbone(**SIZE),
               lambda v: Mamba2ForCausalLM(Mamba2Config(vocab_size=v, hidden_size=256, num_hidden_layers=6,
                                                       num_heads=8, head_dim=64, state_size=64, n_groups=1,
                                                       chunk_size=32))),
    "llama": (lambda: LlamaBackbone(**SIZE, num_heads=4, intermediate_size=704),
              lambda v: LlamaForCausalLM(LlamaConfig(vocab_size=v, hidden_size=256, num_hidden_layers=6,
                                                     num_attention_heads=4, intermediate_size=704,
                                                     max_position_embeddings=4096))),
    "transformer": (lambda: TransformerBackbone(**SIZE, num_heads=4),
                    lambda v: GPT2LMHeadModel(GPT2Config(vocab_size=v, n_embd=256, n_layer=6, n_head=4,
                                                         n_positions=4096))),
}


def build_task(make_backbone) -> AudioLMTask:
    codec = MelVQCodec()  # only its Q and K matter here
    task = AudioLMTask(make_backbone(), FlattenPattern, codec, optimizer=torch.optim.AdamW,
                       scheduler={"warmup_steps": 1, "total_steps": 1}, sampler=Sampler())
    return task.eval()


def step_times(task: AudioLMTask, n_frames: int, use_cache: bool) -> tuple[float, list[float]]:
    """Total seconds, and the time between successive backbone calls (one per decoding step)."""
    stamps: list[float] = []
    hook = task.backbone.register_forward_pre_hook(lambda *_: stamps.append(time.perf_counter()))
    start = time.perf_counter()
    task.generate(n_frames, batch_size=1, use_cache=use_cache, generator=torch.Generator().manual_seed(0))
    total = time.perf_counter() - start
    hook.remove()
    return total, [b - a for a, b in zip(stamps, stamps[1:])]


def hf_generate(model, n_new: int) -> float:
    ids = torch.zeros(1, 1, dtype=torch.long)
    model.generate(ids, max_new_tokens=8, min_new_tokens=8, do_sample=True, top_k=0)  # warm-up
    start = time.perf_counter()
    model.generate(ids, max_new_tokens=n_new, min_new_tokens=n_new, do_sample=True, top_k=0)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-tokens", type=int, default=1500)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "generation.md"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    rows = []
    for name, (make_backbone, make_hf) in BACKBONES.items():
        task = build_task(make_backbone)
        n_frames = args.new_tokens // task.pattern.n_codebooks
        n_tokens = task.pattern.num_steps(n_frames)
        step_times(task, 8, use_cache=True)  # warm-up
        cached, steps = step_times(task, n_frames, use_cache=True)
        full, _ = step_times(task, n_frames, use_cache=False)
        at_100 = statistics.median(steps[95:105])
        at_end = statistics.median(steps[-10:])
        hf = hf_generate(make_hf(task.pattern.vocab_size + 1).eval(), n_tokens)
        params = sum(p.numel() for p in task.parameters()) / 1e6
        rows.append(f"| {name} | {params:.1f}M | {n_tokens / cached:,.0f} | {n_tokens / full:,.0f} | "
                    f"{full / cached:.1f}x | {at_100 * 1e3:.2f} | {at_end * 1e3:.2f} | {at_end / at_100:.2f} | "
                    f"{n_tokens / hf:,.0f} | {hf / cached:.1f}x |")
        print(rows[-1], flush=True)

    table = "\n".join([
        f"Generation at batch 1, {args.new_tokens} new tokens, {args.threads} CPU threads, fp32.",
        "",
        "| backbone | params | cached tok/s | full recompute tok/s | cached vs full | step ms @100 | "
        "step ms @end | end/100 | HF generate() tok/s | cached vs HF |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *rows,
    ])
    print(table)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(table + "\n")


if __name__ == "__main__":
    main()
