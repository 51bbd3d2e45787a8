"""Caption generation speed: KV-cached ``generate`` vs the seed's recompute-everything loop.

    .venv/bin/python benchmarks/caption_generation.py [--new-tokens 64] [--batch 1 4] [--threads 2]

A random Mistral (width 512, 8 layers, 25M parameters; a 7B does not fit a CPU benchmark) gets
the captioner's prefix: the ChatML prompt around 250 audio positions (the seed's projector
output), then generates ``--new-tokens`` tokens greedily (EOS ignored, so both paths do the same
work). The two paths must give the same tokens. Writes benchmarks/results/caption_generation.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from audiolm.tasks.caption.generate import cached_generate, generation_config, recompute_greedy
from audiolm.tasks.caption.layout import PromptLayout
from audiolm.tasks.caption.llm import tiny_causal_lm

AUDIO_POSITIONS = 250


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--batch", type=int, nargs="+", default=[1, 4])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "caption_generation.md")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    lm = tiny_causal_lm(
        hidden_size=512,
        num_layers=8,
        num_heads=8,
        num_kv_heads=2,
        intermediate_size=1536,
        vocab_size=512,
        max_positions=2048,
    ).eval()
    layout = PromptLayout(lm.tokenizer)
    params = sum(q.numel() for q in lm.parameters()) / 1e6
    lines = [
        f"Greedy caption generation, {args.new_tokens} new tokens after a {len(layout.before)} + "
        f"{AUDIO_POSITIONS} audio + {len(layout.after)} position prefix; random Mistral "
        f"({params:.0f}M parameters), CPU ({args.threads} threads), fp32.",
        "",
        "| batch | cached tok/s | seed-style recompute tok/s | speed-up | same tokens |",
        "|---|---|---|---|---|",
    ]
    config = generation_config(
        layout.eos_id, layout.pad_id, max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens
    )
    config.eos_token_id = None  # run every step on both paths
    for b in args.batch:
        torch.manual_seed(0)
        audio = torch.randn(b, AUDIO_POSITIONS, lm.hidden_size) * 0.02
        with torch.inference_mode():
            seq = layout.prefix(lm.embed, audio, torch.full((b,), AUDIO_POSITIONS))
            # warm-up
            recompute_greedy(lm.model, seq.inputs_embeds, seq.attention_mask, 2, layout.eos_id, layout.pad_id)
            start = time.perf_counter()
            cached = cached_generate(lm.model, seq.inputs_embeds, seq.attention_mask, config)
            t_cached = time.perf_counter() - start
            start = time.perf_counter()
            slow = recompute_greedy(
                lm.model,
                seq.inputs_embeds,
                seq.attention_mask,
                args.new_tokens,
                layout.eos_id,
                layout.pad_id,
                stop_at_eos=False,
            )
            t_slow = time.perf_counter() - start
        n = b * args.new_tokens
        line = (
            f"| {b} | {n / t_cached:.1f} | {n / t_slow:.1f} | {t_slow / t_cached:.1f}x | "
            f"{'yes' if torch.equal(cached, slow) else 'NO'} |"
        )
        print(line, flush=True)
        lines.append(line)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
