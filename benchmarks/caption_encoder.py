"""Whisper encoder time on 10 s clips: padded to Whisper's 30 s window vs trimmed to the clips.

    .venv/bin/python benchmarks/caption_encoder.py [--sizes base small] [--batch 4] [--threads 2]

Random-initialised encoders of real Whisper sizes (no weights are needed to time them); the
trimmed encoder runs over 500 positions instead of 1500. Prints per-batch times and the
speed-up, and writes benchmarks/results/caption_encoder.md.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from audiolm.tasks.caption.whisper_weights import random_whisper_encoder

# openai-whisper's encoder dimensions (n_mels, n_state, n_head, n_layer)
SIZES = {
    "tiny": (80, 384, 6, 4),
    "base": (80, 512, 8, 6),
    "small": (80, 768, 12, 12),
    "medium": (80, 1024, 16, 24),
    "large-v3": (128, 1280, 20, 32),
}


QUALITY_NOTE = (
    "Quality trade-off: Whisper was trained only on windows padded to 30 s, so trimmed features differ "
    "from padded ones (most near the clip's end). Train the projector with the setting it will caption "
    "with (task.model.encoder.trim); the seed recipe keeps Whisper's padding."
)


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", nargs="+", default=["base", "small"], choices=sorted(SIZES))
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "caption_encoder.md")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    n = int(args.seconds * 16000)
    wav = 0.1 * torch.randn(args.batch, n)
    lengths = torch.full((args.batch,), n)
    lines = [
        f"Whisper encoder on {args.batch} clips of {args.seconds:g} s, CPU ({args.threads} threads), fp32, "
        f"random weights of each size, median of {args.repeats} runs (log-mel included).",
        "",
        "| size | params | padded to 30 s (ms) | trimmed (ms) | speed-up | positions padded / trimmed |",
        "|---|---|---|---|---|---|",
    ]
    for size in args.sizes:
        n_mels, n_state, n_head, n_layer = SIZES[size]
        with torch.inference_mode():
            padded = random_whisper_encoder(n_mels, n_state, n_head, n_layer, trim=False)
            trimmed = random_whisper_encoder(n_mels, n_state, n_head, n_layer, trim=True)
            t_pad = timed(lambda enc=padded: enc(wav, lengths), args.repeats)
            t_trim = timed(lambda enc=trimmed: enc(wav, lengths), args.repeats)
            positions = (padded(wav[:1], lengths[:1])[0].shape[1], trimmed(wav[:1], lengths[:1])[0].shape[1])
        params = sum(q.numel() for q in padded.parameters()) / 1e6
        line = (
            f"| {size} | {params:.1f}M | {t_pad * 1e3:.0f} | {t_trim * 1e3:.0f} | {t_pad / t_trim:.2f}x | "
            f"{positions[0]} / {positions[1]} |"
        )
        print(line, flush=True)
        lines.append(line)
    lines += ["", QUALITY_NOTE]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
