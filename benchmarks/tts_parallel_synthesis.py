"""Parallel TTS synthesis speed: 10 s of audio by NAR demasking (N steps), by the pure AR mode, and by
the VALL-E AR+NAR model (``task=tts``), on the same backbone.

    .venv/bin/python benchmarks/tts_parallel_synthesis.py [--seconds 10] [--steps 8 16 32] [--threads 1] [--device cpu]

Every model is a Llama of the TTS benchmark's size (hidden 256 x 6 layers, 4 heads) over melvq codes
(Q=4 levels of 256, 50 frames/s), with a 3 s prompt and a one-sentence text. The models are untrained;
their lengths are pinned so each run makes exactly ``--seconds`` of codes: the NAR duration head
outputs that frame count, and the AR models' EOS logit is held below every code's. Figures are model
time only (text and prompt to codes, the best of ``--repeats`` runs); the codec's decoding, the same for
all, is given once. Results go to benchmarks/results/tts_parallel.md.
"""

from __future__ import annotations

import argparse
import functools
import logging
import math
import os
import time
from pathlib import Path

import torch

from audiolm.backbones.llama import LlamaBackbone
from audiolm.codecs.melvq import MelVQCodec
from audiolm.generation.sampling import Sampler
from audiolm.tasks.tts.parallel.decoder import AudioDecoder
from audiolm.tasks.tts.parallel.encoders import AudioEncoder
from audiolm.tasks.tts.parallel.model import ParallelTTS
from audiolm.tasks.tts.parallel.modes.ar import AutoregressiveMode
from audiolm.tasks.tts.parallel.modes.nar import MaskedMode
from audiolm.tasks.tts.speech import SpeechModel
from audiolm.tasks.tts.valle.model import VallE
from audiolm.text.frontend import TextFrontend

TEXT = "The quiet teacher found a red umbrella near the river this morning."
FRONTEND = TextFrontend("en-us")


def codec() -> MelVQCodec:
    torch.manual_seed(0)
    c = MelVQCodec()
    c.load_fitted_state({"centroids": torch.randn(c.n_codebooks, c.codebook_size, c.n_mels)})
    return c


def backbone() -> LlamaBackbone:
    return LlamaBackbone(hidden_size=256, num_layers=6, num_heads=4, intermediate_size=704)


def parallel(mode, sampler: Sampler, frames: int) -> ParallelTTS:
    model = ParallelTTS(backbone(), codec(), FRONTEND, mode, AudioEncoder, AudioDecoder, sampler=sampler)
    with torch.no_grad():
        if isinstance(model.mode, MaskedMode):  # the duration head says `frames`
            model.mode.duration.weight.zero_()
            model.mode.duration.bias.fill_(math.log(frames))
        else:  # EOS never wins
            model.decoder.heads[:, model.eos_id] = 0
            model.decoder.heads[:, : model.eos_id] *= 50
    return model.eval()


def valle(sampler: Sampler) -> VallE:
    model = VallE(backbone(), codec(), FRONTEND, sampler=sampler)  # NAR levels greedy, guided like the AR pass
    with torch.no_grad():
        model.ar_head.weight[model.layout.eos].fill_(0)
        model.ar_head.weight[: model.layout.k] *= 50
    return model.eval()


def best_time(model: SpeechModel, frames: int, repeats: int) -> float:
    ph, g = FRONTEND.ids(TEXT), torch.Generator(device=model.device).manual_seed(0)
    prompt = torch.randint(0, model.codec.codebook_size, (model.codec.n_codebooks, model.prompt_frames))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        codes = model.generate_codes(ph, prompt, frames, generator=g)[0]
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
        assert codes.shape[1] == frames, f"{codes.shape[1]} frames instead of {frames}"
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--steps", type=int, nargs="+", default=[8, 16, 32])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "tts_parallel.md")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    logging.getLogger("audiolm").setLevel(logging.ERROR)  # the max-duration notes are intended here
    sampler = Sampler(temperature=1.0, top_k=50)
    guided = Sampler(temperature=1.0, top_k=50, cfg_scale=3.0, cfg_rescale=0.75)
    frames = int(args.seconds * codec().frame_rate)
    mid = args.steps[len(args.steps) // 2]
    nar = lambda n, s: parallel(functools.partial(MaskedMode, steps=n), s, frames)  # noqa: E731
    ar_passes, valle_passes = f"{frames} cached steps", f"{frames} cached steps + 3 NAR passes"
    models = {f"NAR demasking, N={n}": (lambda n=n: nar(n, sampler), f"{n} + 1 (duration)") for n in args.steps}
    models[f"NAR demasking, N={mid}, CFG"] = (lambda: nar(mid, guided), f"{mid} + 1 (duration), 2 rows")
    models["AR, all levels per step (cached)"] = (lambda: parallel(AutoregressiveMode, sampler, frames), ar_passes)
    models["AR, all levels per step (cached), CFG"] = (
        lambda: parallel(AutoregressiveMode, guided, frames),
        ar_passes + ", 2 rows",
    )
    models["VALL-E AR+NAR (task=tts)"] = (lambda: valle(sampler), valle_passes)
    models["VALL-E AR+NAR (task=tts), CFG"] = (lambda: valle(guided), valle_passes + ", 2 rows")
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"{args.threads} CPU thread(s)"
    lines = [
        f"Parallel TTS synthesis of {args.seconds:.0f} s of audio ({frames} frames) on {device}, batch 1, fp32: "
        f"untrained Llama 256 x 6 layers over melvq codes (4 x 256, 50 frames/s), 3 s prompt, one sentence.",
        "",
        "| model | params | seconds | RTF | forward passes |",
        "|---|---|---|---|---|",
    ]
    for name, (build, passes) in models.items():
        model = build().to(args.device)
        model.codec.to(args.device)
        best_time(model, 25, 1)  # warm-up
        seconds = best_time(model, frames, args.repeats)
        params = sum(p.numel() for p in model.parameters()) / 1e6
        lines.append(f"| {name} | {params:.1f}M | {seconds:.2f} | {seconds / args.seconds:.3f} | {passes} |")
        print(lines[-1], flush=True)
    c = codec().to(args.device)
    start = time.perf_counter()
    c.decode(torch.randint(0, c.codebook_size, (1, c.n_codebooks, frames), device=args.device))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines += [
        "",
        f"Codec decoding (melvq, Griffin-Lim) of the {args.seconds:.0f} s, the same for every model: "
        f"{time.perf_counter() - start:.2f} s.",
        f"Machine load average at the end (1/5/15 min): {load} on {os.cpu_count()} cores (shared with other work).",
        "",
        "seconds: model time from text and prompt to codes, best of "
        f"{args.repeats} runs. RTF: seconds of compute per second of audio. Sampling: temperature 1, top-k 50; "
        "CFG rows: scale 3, rescale 0.75 (an unconditional row beside each conditional one); VALL-E's NAR levels "
        "are greedy, as task=tts does.",
        "Command: `.venv/bin/python benchmarks/tts_parallel_synthesis.py --seconds "
        f"{args.seconds:g} --steps {' '.join(map(str, args.steps))} --repeats {args.repeats} --threads "
        f"{args.threads} --device {args.device}`",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
