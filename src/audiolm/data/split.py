"""The one train/val split rule, for every datamodule (token windows, TTS, captions).

An item's side is decided by the item alone, never by its neighbours or by how many items there are:

1. a **split column** says it: ``split`` (``train``/``training`` or ``val``/``valid``/``validation``/
   ``dev``/``test``/``eval``), else a **group column** that marks held-out items (MusicCaps'
   ``is_audioset_eval``: true -> val);
2. otherwise a **hash of the item's id**: the first bytes of its SHA-1 as a number in [0, 100), and
   the item is val when that number is below ``val_percent``.

So the split is deterministic, the same in every process and on every machine, and stable when a
corpus grows: adding or removing items never moves another item to the other side.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from audiolm.errors import ConfigError, DataError

Side = Literal["train", "val"]
SPLIT_COLUMN = "split"
GROUP_COLUMNS = ("is_audioset_eval",)  # true marks an item held out from training
TRAIN_NAMES = frozenset({"train", "training"})
VAL_NAMES = frozenset({"val", "valid", "validation", "dev", "test", "eval"})
TRUE_NAMES, FALSE_NAMES = frozenset({"true", "1", "yes"}), frozenset({"false", "0", "no"})
VAL_PERCENT = 5.0  # default share of hashed items held out


def check_val_percent(val_percent: float, key: str = "data.val_percent") -> float:
    if not 0 <= val_percent <= 100:
        raise ConfigError(
            f"{key}={val_percent!r} must be a percentage in [0, 100] (the share of items, by a hash "
            f"of their id, held out for validation)"
        )
    return float(val_percent)


def hash_percent(item_id: str) -> float:
    """Where ``item_id`` falls in [0, 100), from its SHA-1 (in steps of 0.01)."""
    return (int(hashlib.sha1(item_id.encode()).hexdigest(), 16) % 10000) / 100


def declared_side(columns: Mapping[str, Any] | None, item_id: str = "") -> Side | None:
    """The side ``columns`` (a manifest row's extra keys, a CSV row) declare, or None when they declare none."""
    columns = columns or {}
    value = columns.get(SPLIT_COLUMN)
    if value not in (None, ""):
        name = str(value).strip().lower()
        if name in VAL_NAMES:
            return "val"
        if name in TRAIN_NAMES:
            return "train"
        raise DataError(
            f"item {item_id!r}: split={value!r} is not a split name; use one of "
            f"{sorted(TRAIN_NAMES)} or {sorted(VAL_NAMES)}, or leave it empty to split by a hash of the id"
        )
    for column in GROUP_COLUMNS:
        flag = columns.get(column)
        if flag in (None, ""):
            continue
        name = str(flag).strip().lower()
        if name in TRUE_NAMES or name in FALSE_NAMES:
            return "val" if name in TRUE_NAMES else "train"
        raise DataError(f"item {item_id!r}: {column}={flag!r} is not true or false")
    return None


def side_of(item_id: str, val_percent: float, columns: Mapping[str, Any] | None = None) -> Side:
    """The item's side: what its columns declare, else val when its id hashes below ``val_percent``."""
    declared = declared_side(columns, item_id)
    if declared is not None:
        return declared
    return "val" if hash_percent(item_id) < val_percent else "train"


def split_indices(
    items: Iterable[tuple[str, Mapping[str, Any] | None]], val_percent: float
) -> tuple[list[int], list[int]]:
    """(train, val) positions of ``items``, each an (id, columns) pair."""
    train, val = [], []
    for i, (item_id, columns) in enumerate(items):
        (val if side_of(item_id, val_percent, columns) == "val" else train).append(i)
    return train, val
