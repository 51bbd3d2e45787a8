"""Speak text with a trained TTS model:

    python -m audiolm.cli.synthesize "Hello there." --ref prompt.wav --out out.wav ckpt=<run>/checkpoints/last.ckpt
    python -m audiolm.cli.synthesize "$(cat story.txt)" --ref me.wav --out story.wav ckpt=model.fp16.safetensors \\
        --adapter voice.safetensors --rolling-context sampling.temperature=0.9 sampling.cfg_scale=2

``ckpt`` is a training checkpoint (its config.yaml beside it), a run folder or an export
(``audiolm.cli.export``) of ``task=tts`` or ``task=tts_parallel``; other ``key=value`` arguments
override its config (``sampling.*``, e.g. ``task.model.mode.steps=32`` for parallel NAR demasking;
the language is ``--language``). Long text is split into sentences, each spoken in turn and
joined. Without ``--ref`` the voice is the model's own choice. The same call from Python::

    model = audiolm.checkpoints.load_model(ckpt)
    model.generate(SpeechRequest(text, reference=Audio.load("me.wav", model.codec.sample_rate)))
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch

from audiolm.cli.export import split_args

log = logging.getLogger("audiolm")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m audiolm.cli.synthesize",
        description=__doc__.splitlines()[0],
        usage="%(prog)s TEXT --out FILE ckpt=<run dir, .ckpt or .safetensors> [--ref WAV] [options] [key=value ...]",
    )
    p.add_argument("text", help="text to speak ('-' reads it from standard input)")
    p.add_argument("--ref", type=Path, help="prompt audio: a few seconds of the voice to imitate")
    p.add_argument("--out", type=Path, required=True, help="output WAV")
    p.add_argument("--adapter", type=Path, help="LoRA adapter exported with audiolm.cli.export --adapter")
    p.add_argument("--language", help="espeak-ng language of the text (default: the one the model was trained on)")
    p.add_argument("--max-seconds", type=float, default=20.0, help="max-duration guard per sentence")
    p.add_argument("--max-chars", type=int, default=200, help="longest piece of text spoken at once")
    p.add_argument(
        "--rolling-context",
        action="store_true",
        help="each sentence's end becomes the prompt of the next (steadier voice over long text)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    return p


def main(argv: list[str] | None = None) -> Path:
    # Loading a model pulls in Hydra, Lightning and the codecs: imported here, so --help answers at once.
    from audiolm.checkpoints import load_model
    from audiolm.runs import exit_on_user_error
    from audiolm.tasks.inference import SpeechRequest
    from audiolm.tasks.tts.prompt import read_prompt

    @exit_on_user_error
    def run(argv: list[str]) -> Path:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
        p = parser()
        if {"-h", "--help"} & set(argv):
            p.parse_args(["--help"])
        ckpt, overrides, rest = split_args(argv)
        args = p.parse_args(rest)
        text = sys.stdin.read() if args.text == "-" else args.text
        model = load_model(ckpt, overrides, args.adapter, args.device)
        # The model checks the text before it encodes the reference: bad text fails first.
        reference = read_prompt(args.ref, model.codec.sample_rate) if args.ref else None
        if reference is None:
            log.warning("no --ref prompt: the voice is the model's own choice")
        result = model.generate(
            SpeechRequest(
                text,
                reference,
                max_seconds=args.max_seconds,
                max_chars=args.max_chars,
                rolling_context=args.rolling_context,
                language=args.language,
                seed=args.seed,
            )
        )
        audio = result.audio[0].save(args.out)
        print(f"wrote {audio} ({result.audio[0].seconds:.2f} s at {result.audio[0].sample_rate} Hz)")
        return args.out

    return run(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
