"""Scan weights for NaN / Inf and count tensors by dtype.

    python -m audiolm.cli.check_weights logs/train/runs/<run>/checkpoints/last.ckpt
    python -m audiolm.cli.check_weights /models/large-v3.pt /models/Mistral-7B-OpenOrca

Reads Lightning checkpoints (``state_dict``), openai-whisper checkpoints (``model_state_dict``),
plain ``torch.save``'d state dicts, ``*.safetensors`` files and folders of them (a transformers
model folder), one tensor at a time where the format allows, so a 7B model needs no 28 GB of RAM.
Prints one line per bad tensor and a summary per file; exits 1 when any tensor is non-finite.
The seed traced a NaN in sampling to an Inf in the weights, and that to a bad RAM stick: run this
after copying or converting weights, and on a checkpoint that starts producing NaNs.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from audiolm.errors import DataError, MissingFileError


@dataclass
class Report:
    path: str
    tensors_by_dtype: Counter = field(default_factory=Counter)
    values_by_dtype: Counter = field(default_factory=Counter)
    bad: list[tuple[str, int, int]] = field(default_factory=list)  # name, NaN count, Inf count

    @property
    def ok(self) -> bool:
        return not self.bad


def _tensors_of(obj: dict, prefix: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    for key, value in obj.items():
        if isinstance(value, torch.Tensor):
            yield prefix + str(key), value
        elif isinstance(value, dict):
            yield from _tensors_of(value, f"{prefix}{key}.")


def _torch_file(path: Path) -> Iterator[tuple[str, torch.Tensor]]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # noqa: BLE001 - say which file and why
        raise DataError(f"{path}: not a readable torch checkpoint ({type(exc).__name__}: {exc})") from None
    for key in ("state_dict", "model_state_dict"):  # Lightning, openai-whisper
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict):
        raise DataError(f"{path}: holds a {type(obj).__name__}, not a state dict")
    yield from _tensors_of(obj)


def _safetensors_file(path: Path) -> Iterator[tuple[str, torch.Tensor]]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        for name in f.keys():  # noqa: SIM118 - safe_open is no dict: it has keys() but is not iterable
            yield name, f.get_tensor(name)


def weight_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(path.glob("*.safetensors")) or sorted(path.glob("*.bin")) or sorted(path.glob("*.pt"))
        if not files:
            raise MissingFileError(f"{path} holds no *.safetensors, *.bin or *.pt weights")
        return files
    if not path.is_file():
        raise MissingFileError(f"weights not found: {path}")
    return [path]


def check_file(path: Path) -> Report:
    report = Report(str(path))
    tensors = _safetensors_file(path) if path.suffix == ".safetensors" else _torch_file(path)
    for name, t in tensors:
        report.tensors_by_dtype[str(t.dtype).removeprefix("torch.")] += 1
        report.values_by_dtype[str(t.dtype).removeprefix("torch.")] += t.numel()
        if t.is_floating_point() or t.is_complex():
            nan, inf = int(torch.isnan(t).sum()), int(torch.isinf(t).sum())
            if nan or inf:
                report.bad.append((name, nan, inf))
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("paths", nargs="+", type=Path, help="checkpoint files, or folders of weight files")
    args = p.parse_args(argv)
    all_ok = True
    try:
        files = [f for path in args.paths for f in weight_files(path)]
        for f in files:
            report = check_file(f)
            for name, nan, inf in report.bad:
                print(f"BAD  {f}: {name}: {nan} NaN, {inf} Inf")
            counts = ", ".join(
                f"{d}: {n} tensors / {report.values_by_dtype[d]:,} values"
                for d, n in sorted(report.tensors_by_dtype.items())
            )
            print(f"{'OK ' if report.ok else 'BAD'}  {f}: {counts or 'no tensors'}")
            all_ok &= report.ok
    except (DataError, MissingFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
