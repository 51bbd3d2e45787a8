"""Training throughput per backbone on CPU: forward + backward + AdamW, fp32.

    .venv/bin/python benchmarks/train_throughput.py [--batch 4] [--length 512] [--steps 3] [--threads 2]

Every backbone is sized to about 3M parameters and trained on random embeddings against a
random target (the codec, embedding and head are left out: this measures the backbone). It
prints training tokens/s as a markdown table, then transformers' own PyTorch selective scan (a
loop over positions) against audiolm's chunked scan on the same Mamba, measured in the same
run. Results go to benchmarks/results/train_throughput.md.
"""

from __future__ import annotations

import argparse
import inspect
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers.models.mamba import modeling_mamba

from audiolm.backbones.base import Backbone
from audiolm.backbones.llama import LlamaBackbone
from audiolm.backbones.mamba import MambaBackbone
from audiolm.backbones.mamba2 import Mamba2Backbone
from audiolm.backbones.transformer import TransformerBackbone

RESULTS = Path(__file__).parent / "results" / "train_throughput.md"


def backbones(length: int) -> dict[str, Callable[[], Backbone]]:
    """~3M-parameter configurations, each at hidden size 256."""
    return {
        "mamba": lambda: MambaBackbone(hidden_size=256, num_layers=7),
        "mamba2": lambda: Mamba2Backbone(hidden_size=256, num_layers=7),
        "llama": lambda: LlamaBackbone(
            hidden_size=256, num_layers=4, num_heads=4, intermediate_size=704, max_position_embeddings=length
        ),
        "transformer": lambda: TransformerBackbone(
            hidden_size=256, num_layers=4, num_heads=4, max_position_embeddings=length
        ),
    }


def step_seconds(backbone: Backbone, batch: int, length: int, steps: int, warmup: int) -> list[float]:
    """Seconds of each measured optimizer step (after ``warmup`` unmeasured ones)."""
    torch.manual_seed(0)
    inputs = torch.randn(batch, length, backbone.hidden_size)
    target = torch.randn(batch, length, backbone.hidden_size)
    optimizer = torch.optim.AdamW(backbone.parameters(), lr=1e-4)
    backbone.train()
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        hidden, _ = backbone(inputs)
        F.mse_loss(hidden, target).backward()
        optimizer.step()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--length", type=int, default=512)
    parser.add_argument("--steps", type=int, default=3, help="measured optimizer steps per backbone")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--reference-steps",
        type=int,
        default=1,
        help="measured steps of transformers' sequential scan (slow; 0 skips the comparison)",
    )
    parser.add_argument("--only", nargs="*", help="backbones to measure (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tokens = args.batch * args.length

    header = [
        f"Training throughput, fp32 on CPU ({args.threads} threads, {os.cpu_count()} cores), "
        f"batch {args.batch} x length {args.length}, AdamW; median of {args.steps} steps after {args.warmup} warm-up.",
        "",
        "| backbone | parameters | s / step | tokens / s |",
        "|---|---:|---:|---:|",
    ]
    print("\n".join(header), flush=True)
    lines = list(header)
    scan_step = None
    for name, make in backbones(args.length).items():
        if args.only and name not in args.only:
            continue
        backbone = make()
        seconds = statistics.median(step_seconds(backbone, args.batch, args.length, args.steps, args.warmup))
        if name == "mamba":
            scan_step = seconds
        params = sum(p.numel() for p in backbone.parameters())
        lines.append(f"| {name} | {params / 1e6:.2f}M | {seconds:.2f} | {tokens / seconds:,.0f} |")
        print(lines[-1], flush=True)

    if args.reference_steps and scan_step is not None:
        # The hook that transformers' Mamba mixer calls is our device dispatcher; point it at
        # transformers' own PyTorch scan for the reference, then restore it.
        dispatcher = modeling_mamba.mamba_selective_scan
        modeling_mamba.mamba_selective_scan = inspect.unwrap(dispatcher)
        try:
            backbone = backbones(args.length)["mamba"]()
            reference_step = statistics.median(
                step_seconds(backbone, args.batch, args.length, args.reference_steps, warmup=0)
            )
        finally:
            modeling_mamba.mamba_selective_scan = dispatcher
        lines += [
            "",
            "Mamba selective scan, same model and batch:",
            "",
            "| scan | s / step | tokens / s |",
            "|---|---:|---:|",
            f"| transformers (loop over positions) | {reference_step:.2f} | {tokens / reference_step:,.0f} |",
            f"| audiolm chunked | {scan_step:.2f} | {tokens / scan_step:,.0f} |",
            "",
            f"audiolm's chunked scan trains {reference_step / scan_step:.0f}x faster than transformers' PyTorch scan.",
        ]
        print("\n".join(lines[-9:]), flush=True)

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print(f"\nwritten to {RESULTS}")


if __name__ == "__main__":
    main()
