"""Export a checkpoint to safetensors, with what is needed to rebuild it in the metadata:

    python -m audiolm.cli.export ckpt=<run>/checkpoints/last.ckpt --out model.safetensors --dtype fp16
    python -m audiolm.cli.export ckpt=<lora run>/checkpoints/last.ckpt --adapter --out voice.safetensors

The file layout is ``audiolm.exports``'s. ``--adapter`` writes just the LoRA adapter weights, loaded
back onto the base model with ``--adapter`` of ``audiolm.cli.synthesize`` (or ``load_model(adapter=...)``).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from audiolm.errors import AudiolmError
from audiolm.exports import DTYPES, save_export

# A config override: a dotted key (Hydra's +/++/~ prefixes allowed), '=', a value without spaces.
OVERRIDE = re.compile(r"^(\+\+|\+|~)?[A-Za-z_][\w.@/]*=\S*$")


def split_args(argv: list[str]) -> tuple[Path, list[str], list[str]]:
    """``ckpt=PATH``, the other ``key=value`` overrides, and the remaining arguments (flags, and text, which
    has spaces or no ``key=`` shape; a text that looks like an override can come through standard input)."""
    ckpts = [a.split("=", 1)[1] for a in argv if a.startswith("ckpt=")]
    if len(ckpts) != 1:
        raise AudiolmError("give the model as ckpt=<run dir>/checkpoints/last.ckpt (or an export .safetensors)")
    overrides = [a for a in argv if OVERRIDE.match(a) and not a.startswith("ckpt=")]
    rest = [a for a in argv if not a.startswith("ckpt=") and a not in overrides]
    return Path(ckpts[0]), overrides, rest


def main(argv: list[str] | None = None) -> Path:
    import sys

    from audiolm.checkpoints import load_model, resolve_checkpoint
    from audiolm.runs import exit_on_user_error

    @exit_on_user_error
    def run(argv: list[str]) -> Path:
        p = argparse.ArgumentParser(
            prog="python -m audiolm.cli.export",
            description=__doc__.splitlines()[0],
            usage="%(prog)s ckpt=<run dir or .ckpt> [--out FILE] [--dtype D] [--adapter] [key=value ...]",
        )
        p.add_argument(
            "--out", type=Path, help="output file (default: next to the checkpoint, <name>.<dtype>.safetensors)"
        )
        p.add_argument("--dtype", default="fp32", choices=sorted(DTYPES))
        p.add_argument("--adapter", action="store_true", help="export only the LoRA adapter")
        if {"-h", "--help"} & set(argv):
            p.parse_args(["--help"])
        ckpt, overrides, rest = split_args(argv)
        args = p.parse_args(rest)
        ckpt = resolve_checkpoint(ckpt)
        model = load_model(ckpt, overrides)
        kind = "adapter" if args.adapter else args.dtype
        out = save_export(
            model, model.config, args.out or ckpt.with_name(f"{ckpt.stem}.{kind}.safetensors"), args.dtype, args.adapter
        )
        print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
        return out

    return run(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
