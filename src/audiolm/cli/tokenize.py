"""Tokenise a manifest into a token store.

    python -m audiolm.cli.tokenize --manifest data/train.jsonl --store-root data/tokens/train \\
        --codec-config configs/codec/melvq.yaml

The codec yaml is a Hydra node with a ``_target_``; it is instantiated as is. Rerunning resumes an
interrupted store and returns at once for a complete one.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import OmegaConf

from audiolm.codecs.base import AudioCodec
from audiolm.data.tokens.store import REPORT
from audiolm.data.tokens.tokenize import tokenize_manifest


def main(argv: list[str] | None = None) -> None:
    from audiolm.runs import exit_on_user_error  # a user's error (a full disk, a bad manifest) ends in one line

    exit_on_user_error(_tokenize)(argv)


def _tokenize(argv: list[str] | None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--manifest", required=True, type=Path, help="JSON-lines manifest of the corpus")
    p.add_argument("--store-root", required=True, type=Path, help="folder holding this corpus's token stores")
    p.add_argument("--codec-config", required=True, type=Path, help="codec yaml with a _target_")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--shard-items", type=int, default=256)
    p.add_argument("--fit-max-seconds", type=float, default=600.0, help="audio used to fit codecs that need it")
    p.add_argument("--device", default="auto", help="auto (CUDA when there is a GPU), cpu, cuda, cuda:1, ...")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    if not args.codec_config.is_file():
        p.error(f"codec config not found: {args.codec_config}")
    codec = instantiate(OmegaConf.load(args.codec_config))
    if not isinstance(codec, AudioCodec):
        p.error(f"{args.codec_config} instantiates {type(codec).__name__}, not an AudioCodec; check its _target_")
    store = tokenize_manifest(
        args.manifest,
        codec,
        args.store_root,
        batch_size=args.batch_size,
        shard_items=args.shard_items,
        fit_max_seconds=args.fit_max_seconds,
        device=args.device,
        progress=not args.no_progress,
    )
    print(
        f"{store.path}: {len(store)} items, {store.frames_total} frames "
        f"({store.frames_total / store.frame_rate / 3600:.2f} h), {store.meta.get('n_skipped', 0)} skipped "
        f"(see {store.path / REPORT})"
    )


if __name__ == "__main__":
    main()
