"""The one train/val split rule (audiolm.data.split), and that every datamodule uses it."""

from __future__ import annotations

import pytest

from audiolm.data.caption import CaptionClip, CaptionDataModule
from audiolm.data.datamodule import TokenDataModule
from audiolm.data.split import declared_side, hash_percent, side_of, split_indices
from audiolm.errors import ConfigError, DataError

IDS = [f"speaker_{i:04d}" for i in range(2000)]


def test_hash_split_is_deterministic_and_near_the_asked_share():
    first = [side_of(i, 10.0) for i in IDS]
    assert first == [side_of(i, 10.0) for i in IDS]
    assert 0.07 < first.count("val") / len(IDS) < 0.13
    assert all(0 <= hash_percent(i) < 100 for i in IDS[:50])
    assert {side_of(i, 0.0) for i in IDS} == {"train"} and {side_of(i, 100.0) for i in IDS} == {"val"}


def test_an_item_never_changes_side_when_the_corpus_grows_or_shrinks():
    small = dict(zip(IDS[:300], (side_of(i, 5.0) for i in IDS[:300]), strict=True))
    grown = {IDS[k]: s for k, s in zip(*_positions(IDS, 5.0), strict=True)}
    shrunk = {
        IDS[::-1][k]: s for k, s in zip(*_positions(IDS[::-1][:1000], 5.0), strict=True)
    }  # other order, fewer items
    assert all(grown[i] == s for i, s in small.items())
    assert all(grown[i] == s for i, s in shrunk.items())


def _positions(ids, val_percent):
    train, val = split_indices(((i, None) for i in ids), val_percent)
    sides = {k: "train" for k in train} | {k: "val" for k in val}
    return list(sides), list(sides.values())


def test_a_split_or_group_column_decides_before_the_hash():
    hashed_val = next(i for i in IDS if side_of(i, 5.0) == "val")
    assert side_of(hashed_val, 5.0, {"split": "train"}) == "train"
    assert side_of(IDS[0], 5.0, {"split": "validation"}) == "val" and side_of(IDS[0], 5.0, {"split": "Test"}) == "val"
    # MusicCaps' group column: parsed (True) or raw CSV text ("True"/"False")
    assert side_of(IDS[0], 5.0, {"is_audioset_eval": True}) == "val"
    assert side_of(hashed_val, 5.0, {"is_audioset_eval": "False"}) == "train"
    assert side_of(hashed_val, 5.0, {"split": "", "is_audioset_eval": None}) == "val"  # empty: the hash decides
    assert declared_side({"split": "train", "is_audioset_eval": True}) == "train"  # split wins over the group


def test_unknown_split_names_and_bad_percentages_are_errors_that_say_what_to_use():
    with pytest.raises(DataError, match=r"item 'a': split='holdout' is not a split name.*'val'"):
        side_of("a", 5.0, {"split": "holdout"})
    with pytest.raises(DataError, match="is_audioset_eval='maybe' is not true or false"):
        side_of("a", 5.0, {"is_audioset_eval": "maybe"})
    with pytest.raises(ConfigError, match=r"data.val_percent=150 must be a percentage in \[0, 100\]"):
        TokenDataModule(corpus=None, codec=None, tokens_dir="x", val_percent=150)


class _Store:
    def __init__(self, entries):
        self.entries = entries


class _Clips(CaptionDataModule):
    def __init__(self, clips, **kwargs):
        super().__init__(**kwargs)
        self._clips = clips

    def clips(self):
        return self._clips


def test_token_and_caption_datamodules_split_the_same_items_the_same_way():
    ids = ["a", "b", "c", *IDS[:200]]
    extras = [{"split": "val"}, {"is_audioset_eval": True}, {"split": "train"}, *[{}] * 200]
    dm = TokenDataModule(corpus=None, codec=None, tokens_dir="x", val_percent=10.0)
    dm.store = _Store([{"id": i, "extra": e} for i, e in zip(ids, extras, strict=True)])
    train, val = dm.split()
    clips = [
        CaptionClip(id=i, path="x.wav", caption="c", duration=1.0, split=declared_side(e, i))
        for i, e in zip(ids, extras, strict=True)
    ]
    cap = _Clips(clips, val_percent=10.0)
    cap.setup("fit")
    assert [ids[k] for k in val] == [c.id for c in cap.val_clips]
    assert [ids[k] for k in train] == [c.id for c in cap.train_clips]
    assert {"a", "b"} <= {ids[k] for k in val} and "c" in {ids[k] for k in train}
