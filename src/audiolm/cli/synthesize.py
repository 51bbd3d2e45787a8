"""Speak text with a trained TTS model:

    python -m audiolm.cli.synthesize "Hello there." --ref prompt.wav --out out.wav ckpt=<run>/checkpoints/last.ckpt
    python -m audiolm.cli.synthesize "$(cat story.txt)" --ref me.wav --out story.wav ckpt=model.fp16.safetensors \\
        --adapter voice.safetensors --rolling-context sampling.temperature=0.9 sampling.cfg_scale=2

``ckpt`` is a training checkpoint (its config.yaml beside it) or an export (``audiolm.cli.export``) of
``task=tts`` or ``task=tts_parallel``; other ``key=value`` arguments override its config (``sampling.*``,
e.g. ``task.mode.steps=32`` for parallel NAR demasking; the language is ``--language``). Long text is
split into sentences, each spoken in turn and joined. Without ``--ref`` the voice is the model's
own choice.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch

from audiolm.audio.io import save_audio
from audiolm.cli.export import load_model, split_args
from audiolm.runs import exit_on_user_error
from audiolm.tasks.tts.prompt import load_prompt
from audiolm.tasks.tts.synthesize import synthesize
from audiolm.text.frontend import TextFrontend

log = logging.getLogger("audiolm")


def parse(rest: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m audiolm.cli.synthesize", description=__doc__.splitlines()[0])
    p.add_argument("text", help="text to speak ('-' reads it from standard input)")
    p.add_argument("--ref", type=Path, help="prompt audio: a few seconds of the voice to imitate")
    p.add_argument("--out", type=Path, required=True, help="output WAV")
    p.add_argument("--adapter", type=Path, help="LoRA adapter exported with audiolm.cli.export --adapter")
    p.add_argument("--language", help="espeak-ng language of the text (default: the one the model was trained on)")
    p.add_argument("--max-seconds", type=float, default=20.0, help="max-duration guard per sentence")
    p.add_argument("--max-chars", type=int, default=200, help="longest piece of text spoken at once")
    p.add_argument("--rolling-context", action="store_true",
                   help="each sentence's end becomes the prompt of the next (steadier voice over long text)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    return p.parse_args(rest)


@exit_on_user_error
def main(argv: list[str] | None = None) -> Path:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    ckpt, overrides, rest = split_args(sys.argv[1:] if argv is None else argv)
    args = parse(rest)
    text = sys.stdin.read() if args.text == "-" else args.text
    _, codec, task = load_model(ckpt, overrides, args.adapter)
    if args.language:
        task.text = TextFrontend(args.language, task.text.vocab.symbols)
    task.to(args.device)
    codec.to(args.device)
    task.text.phonemes(text)  # bad text fails before the prompt is encoded
    prompt = load_prompt(args.ref, task) if args.ref else None
    if prompt is None:
        log.warning("no --ref prompt: the voice is the model's own choice")
    generator = torch.Generator(device=args.device).manual_seed(args.seed)
    wav = synthesize(task, text, prompt, max_seconds=args.max_seconds, max_chars=args.max_chars,
                     rolling_context=args.rolling_context, generator=generator)
    save_audio(args.out, wav, codec.sample_rate)
    print(f"wrote {args.out} ({wav.shape[-1] / codec.sample_rate:.2f} s at {codec.sample_rate} Hz)")
    return args.out


if __name__ == "__main__":
    main()
