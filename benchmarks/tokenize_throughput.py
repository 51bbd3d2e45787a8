"""Tokenisation throughput per codec, as x real time (seconds of audio encoded per second of wall time).

    .venv/bin/python benchmarks/tokenize_throughput.py [--clips 4] [--seconds 10] [--device auto] [--codecs encodec,dac]

Each codec tokenises the same generated corpus (speech-like harmonic clips at 16 kHz) through the
real path, ``tokenize_manifest``: read, resample to the codec's rate, batch, encode, write the store.
Pretrained codecs cannot be downloaded here, so they are built from their released architecture
with random weights (``from_config``): the compute per second of audio is the same. NeMo is
measured only when nemo_toolkit is installed. Results go to benchmarks/results/tokenize.md.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from audiolm.codecs.base import AudioCodec
from audiolm.data.manifest import Utterance, write_manifest
from audiolm.data.tokens.tokenize import resolve_device, tokenize_manifest

SR = 16000
# config.json of fnlp/SpeechTokenizer's speechtokenizer_hubert_avg (the architecture; weights are random here)
SPEECHTOKENIZER = {
    "n_filters": 64,
    "dimension": 1024,
    "strides": [8, 5, 4, 2],
    "lstm_layers": 2,
    "bidirectional": True,
    "dilation_base": 2,
    "residual_kernel_size": 3,
    "n_residual_layers": 1,
    "activation": "ELU",
    "sample_rate": 16000,
    "n_q": 8,
    "semantic_dimension": 768,
    "codebook_size": 1024,
}


def mulaw() -> AudioCodec:
    from audiolm.codecs.mulaw import MuLawCodec

    return MuLawCodec(sample_rate=SR)


def melvq() -> AudioCodec:
    from audiolm.codecs.melvq import MelVQCodec

    return MelVQCodec()  # fitted by tokenize_manifest on the corpus: the fit is part of its cost


def encodec() -> AudioCodec:
    from transformers import EncodecConfig

    from audiolm.codecs.encodec import EncodecCodec

    return EncodecCodec.from_config(EncodecConfig(), n_q=8)  # encodec_24khz, 6 kbps


def dac() -> AudioCodec:
    from transformers import DacConfig

    from audiolm.codecs.dac import DacCodec

    return DacCodec.from_config(DacConfig(sampling_rate=44100), n_q=9)  # dac_44khz


def mimi() -> AudioCodec:
    from transformers import MimiConfig

    from audiolm.codecs.mimi import MimiCodec

    return MimiCodec.from_config(MimiConfig(), n_q=8)


def speechtokenizer() -> AudioCodec:
    from speechtokenizer import SpeechTokenizer

    from audiolm.codecs.speechtokenizer import SpeechTokenizerCodec

    folder = Path(tempfile.mkdtemp())
    (folder / "config.json").write_text(json.dumps(SPEECHTOKENIZER))
    torch.save(SpeechTokenizer(SPEECHTOKENIZER).state_dict(), folder / "SpeechTokenizer.pt")
    return SpeechTokenizerCodec(str(folder), n_q=8)


def nemo() -> AudioCodec:
    from audiolm.codecs.nemo import NemoCodec, released_config

    return NemoCodec.from_config(released_config())


CODECS: dict[str, Callable[[], AudioCodec]] = {
    "mulaw": mulaw,
    "melvq": melvq,
    "encodec": encodec,
    "dac": dac,
    "mimi": mimi,
    "speechtokenizer": speechtokenizer,
    "nemo": nemo,
}


def make_corpus(folder: Path, clips: int, seconds: float) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(clips):
        t = np.arange(int(seconds * SR)) / SR
        f0 = 110 + 40 * i + 20 * np.sin(2 * np.pi * 0.5 * t)
        phase = 2 * np.pi * np.cumsum(f0) / SR
        wav = sum(np.sin(k * phase) / k for k in range(1, 12)) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)) * 0.1
        path = folder / f"clip{i}.wav"
        sf.write(path, wav + 0.003 * rng.standard_normal(t.shape), SR)
        rows.append(Utterance(path=str(path), duration=seconds, id=f"clip{i}"))
    return write_manifest(folder / "manifest.jsonl", rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--codecs", default=",".join(CODECS))
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "tokenize.md"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        manifest = make_corpus(Path(tmp), args.clips, args.seconds)
        audio_seconds = args.clips * args.seconds
        for name in args.codecs.split(","):
            try:
                codec = CODECS[name]()
            except ImportError as e:
                print(f"{name}: skipped ({e})")
                continue
            if not codec.needs_fit:  # warm-up: first-call costs are not throughput
                with torch.inference_mode():
                    codec.to(device).encode(torch.zeros(1, 1, codec.sample_rate, device=device))
            start = time.perf_counter()
            store = tokenize_manifest(
                manifest, codec, Path(tmp) / "tokens" / name, batch_size=args.clips, device=device, progress=False
            )
            wall = time.perf_counter() - start
            params = sum(p.numel() for p in codec.parameters()) / 1e6
            rows.append(
                f"| {name} | {params:.1f}M | {codec.sample_rate} | {codec.frame_rate:g} | "
                f"{codec.n_codebooks} x {codec.codebook_size} | {len(store)} | {audio_seconds / wall:,.1f}x |"
            )
            print(rows[-1], flush=True)

    where = f"{torch.cuda.get_device_name()}" if device.startswith("cuda") else f"{args.threads} CPU threads"
    table = "\n".join(
        [
            f"Tokenisation of {args.clips} clips x {args.seconds:g} s (16 kHz source) through tokenize_manifest, "
            f"{where}, fp32, batch {args.clips}. Pretrained codecs: released architecture, random weights.",
            "",
            "| codec | params | sample rate | frames/s | levels x size | items | x real time |",
            "|---|---|---|---|---|---|---|",
            *rows,
        ]
    )
    print(table)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(table + "\n")


if __name__ == "__main__":
    main()
