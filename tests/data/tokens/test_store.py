"""Token store and tokenisation pipeline, on small WAV corpora and a small real codec defined here."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from audiolm.audio.io import load_audio
from audiolm.codecs.base import AudioCodec
from audiolm.data.manifest import Utterance, read_manifest, write_manifest
from audiolm.data.tokens.store import CODEC_STATE, META, REPORT, TokenStore, codes_dtype, store_key
from audiolm.data.tokens.tokenize import tokenize_manifest
from audiolm.errors import DataError

SR = 8000


class Interrupted(BaseException):
    """Stands in for the process dying (Ctrl-C, OOM kill) mid-run: not an error about one file."""


class MeanAmpCodec(AudioCodec):
    """Frame-wise mean |amplitude|, quantised in two levels (coarse, then the residual): codes [B, Q=2, F]."""

    n_codebooks = 2

    def __init__(self, hop: int = 80, codebook_size: int = 16, fail_after: int | None = None):
        super().__init__()
        self.sample_rate, self.hop, self.codebook_size = SR, hop, codebook_size
        self.frame_rate = SR / hop
        self.fail_after = fail_after  # encode calls allowed before Interrupted
        self.encode_calls = self.items_encoded = 0
        self.register_buffer("scale", torch.tensor(1.0))

    def _frame_means(self, wav: torch.Tensor) -> torch.Tensor:
        """wav: [B, 1, T] -> mean |amplitude| per frame: [B, F], zero-padded to whole frames."""
        f = self.num_frames(wav.shape[-1])
        wav = torch.nn.functional.pad(wav, (0, f * self.hop - wav.shape[-1]))
        return wav.reshape(wav.shape[0], f, self.hop).abs().mean(-1)

    def _encode(self, wav: torch.Tensor) -> torch.Tensor:
        self.encode_calls += 1
        if self.fail_after is not None and self.encode_calls > self.fail_after:
            raise Interrupted
        self.items_encoded += wav.shape[0]
        k = self.codebook_size
        x = (self._frame_means(wav) / self.scale).clamp(0, 1) * (k - 1e-6)
        coarse = x.floor()
        fine = ((x - coarse) * k).floor().clamp(0, k - 1)
        return torch.stack([coarse, fine], 1).long()

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        k = self.codebook_size
        level = (codes[:, 0] + (codes[:, 1] + 0.5) / k) / k * self.scale  # [B, F]
        return level.repeat_interleave(self.hop, -1)[:, None]

    def config_dict(self) -> dict:
        return {"codec": type(self).__name__, "sample_rate": SR, "hop": self.hop, "codebook_size": self.codebook_size}


class FittedMeanAmpCodec(MeanAmpCodec):
    """Same codes, but the amplitude scale is learned from data: the largest frame mean seen by ``fit``."""

    needs_fit = True

    def __init__(self, **kw):
        super().__init__(**kw)
        self.fit_calls = self.fit_samples = 0
        self.fitted = False

    def fit(self, wavs) -> None:
        self.fit_calls += 1
        wavs = list(wavs)
        self.fit_samples = sum(w.shape[-1] for w in wavs)
        self.scale = torch.stack([self._frame_means(w[None]).max() for w in wavs]).max()
        self.fitted = True

    def fitted_state(self) -> dict[str, torch.Tensor]:
        return {"scale": self.scale} if self.fitted else {}

    def load_fitted_state(self, state: dict[str, torch.Tensor]) -> None:
        self.scale = state["scale"].clone()
        self.fitted = True

    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        if not self.fitted:
            raise RuntimeError("FittedMeanAmpCodec.encode before fit")
        return super().encode(wav)


class PickyCodec(MeanAmpCodec):
    """Rejects any clip with a sample above 0.9, as a codec rejecting one bad input would."""

    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        if wav.abs().max() > 0.9:
            raise ValueError("clipping input")
        return super().encode(wav)


def make_corpus(tmp_path: Path, n: int = 11, name: str = "train.jsonl") -> Path:
    """n sine clips of varied length and loudness, plus one segment (offset/duration) of a longer file."""
    audio = tmp_path / "wav"
    audio.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        t = np.arange(int(rng.integers(200, 4000))) / SR
        sf.write(audio / f"u{i}.wav", 0.8 * rng.uniform(0.1, 1) * np.sin(2 * np.pi * 220 * t), SR, subtype="PCM_16")
        rows.append(
            Utterance(
                path=f"wav/u{i}.wav",
                duration=len(t) / SR,
                id=f"u{i}",
                speaker=f"s{i % 2}",
                text=f"text {i}",
                extra={"lang": "xx"},
            )
        )
    t = np.arange(SR) / SR
    sf.write(audio / "long.wav", 0.5 * np.sin(2 * np.pi * 3 * t) * np.sin(2 * np.pi * 440 * t), SR, subtype="PCM_16")
    rows.append(Utterance(path="wav/long.wav", duration=0.25, offset=0.5))
    return write_manifest(tmp_path / name, rows)


def check_codes(store: TokenStore, codec: MeanAmpCodec, manifest: Path, expect_ids: set[str] | None = None) -> None:
    """Every manifest item (or just ``expect_ids``) is in the store exactly once, with the codes of a direct encode."""
    rows = {u.id: u for u in read_manifest(manifest)}
    ids = [e["id"] for e in store.entries]
    assert len(ids) == len(set(ids)) == len(store)
    assert set(ids) == (expect_ids if expect_ids is not None else set(rows))
    with torch.inference_mode():
        for i, e in enumerate(store.entries):
            wav = load_audio(e["path"], SR, e["offset"], e["duration"])
            direct = codec.encode(wav[None])[0].numpy()
            got = store.codes(i)
            assert got.shape == direct.shape == (2, codec.num_frames(wav.shape[-1]))
            np.testing.assert_array_equal(got, direct)
            u = rows[e["id"]]
            assert (e["speaker"], e["text"], e["duration"], e["extra"]) == (u.speaker, u.text, u.duration, u.extra)


def test_round_trip(tmp_path):
    manifest = make_corpus(tmp_path)
    codec = MeanAmpCodec()
    store = tokenize_manifest(manifest, codec, tmp_path / "store", batch_size=4, shard_items=5, progress=True)
    assert len(store) == 12 and store.meta["complete"] and store.meta["n_items"] == 12
    assert store.path == tmp_path / "store" / store_key(codec.config_dict())
    assert sorted(p.name for p in store.path.glob("shard-*")) == [
        f"shard-0000{i}.{x}" for i in range(3) for x in ("json", "npy")
    ]
    check_codes(store, MeanAmpCodec(), manifest)
    assert store.frames_total == sum(store.codes(i).shape[1] for i in range(len(store)))
    seg = next(e for e in store.entries if e["id"] == "wav/long.wav@0.500")
    assert seg["n_frames"] == codec.num_frames(2000) and seg["offset"] == 0.5
    assert next(e for e in store.entries if e["id"] == "u0")["extra"] == {"lang": "xx"}
    # Read-only memory maps, not arrays in RAM; a pickled store carries no data.
    c = store.codes(3)
    assert not c.flags.writeable and c.flags.c_contiguous
    assert any(isinstance(b, np.memmap) for b in (c, c.base, getattr(c.base, "base", None)))
    clone = pickle.loads(pickle.dumps(store))
    assert len(pickle.dumps(store)) < 20_000
    np.testing.assert_array_equal(clone.codes(3), c)
    assert TokenStore.find(tmp_path / "store", codec.config_dict()).frames_total == store.frames_total


def test_resume_after_interruption(tmp_path):
    manifest = make_corpus(tmp_path)
    root = tmp_path / "store"
    with pytest.raises(Interrupted):
        tokenize_manifest(manifest, MeanAmpCodec(fail_after=4), root, batch_size=2, shard_items=3, progress=False)
    partial = TokenStore(root / store_key(MeanAmpCodec().config_dict()), allow_incomplete=True)
    assert not partial.meta["complete"] and len(partial) == 6  # 4 batches of 2 = 8 encoded, 2 whole shards of 3
    with pytest.raises(RuntimeError, match="incomplete"):
        TokenStore(partial.path)
    codec = MeanAmpCodec()
    store = tokenize_manifest(manifest, codec, root, batch_size=2, shard_items=3, progress=False)
    assert codec.items_encoded == 12 - 6  # the 6 already stored are not redone
    check_codes(store, MeanAmpCodec(), manifest)


def test_partial_shards_ignored_and_cleaned(tmp_path):
    manifest = make_corpus(tmp_path)
    root = tmp_path / "store"
    with pytest.raises(Interrupted):
        tokenize_manifest(manifest, MeanAmpCodec(fail_after=2), root, batch_size=2, shard_items=2, progress=False)
    path = root / store_key(MeanAmpCodec().config_dict())
    # Debris of a crash: a temp file, a data file whose index never landed, a half-written index.
    for n in (2, 9):
        np.save(path / f"shard-{n:05d}.npy", np.full(7, 9, np.uint8))
    (path / "shard-00003.npy.partial").write_bytes(b"\x93NUMPY garbage")
    (path / "shard-00002.json.partial").write_text('[{"id": "u0", "n_fr')
    seen = TokenStore(path, allow_incomplete=True)
    assert len(seen) == 4 and {e["shard"] for e in seen.entries} == {0, 1}
    store = tokenize_manifest(manifest, MeanAmpCodec(), root, batch_size=2, shard_items=2, progress=False)
    assert not list(path.glob("*.partial")) and not (path / "shard-00009.npy").exists()
    assert all((path / p.name.replace(".npy", ".json")).exists() for p in path.glob("shard-*.npy"))
    check_codes(store, MeanAmpCodec(), manifest)


def test_complete_store_reused_without_encoding(tmp_path):
    manifest = make_corpus(tmp_path)
    first = tokenize_manifest(manifest, MeanAmpCodec(), tmp_path / "store", progress=False)
    stamp = {p.name: p.stat().st_mtime_ns for p in first.path.iterdir()}
    codec = MeanAmpCodec()
    again = tokenize_manifest(manifest, codec, tmp_path / "store", progress=False)
    assert codec.encode_calls == 0 and again.entries == first.entries
    assert {p.name: p.stat().st_mtime_ns for p in first.path.iterdir()} == stamp


def test_store_key_follows_codec_config():
    a, b = MeanAmpCodec().config_dict(), MeanAmpCodec(hop=160).config_dict()
    assert store_key(a) == store_key(dict(reversed(list(a.items()))))  # key order does not matter
    assert store_key(a) != store_key(b) and store_key(a) != store_key({**a, "codebook_size": 32})
    assert len(store_key(a)) == 16 and int(store_key(a), 16) >= 0


def test_mismatch_is_an_error(tmp_path):
    manifest = make_corpus(tmp_path)
    root = tmp_path / "store"
    store = tokenize_manifest(manifest, MeanAmpCodec(), root, progress=False)
    with pytest.raises(ValueError, match=r"codec\.hop: store has 80, this run has 160"):
        TokenStore(store.path, expect_config=MeanAmpCodec(hop=160).config_dict())
    # Another corpus into the same root.
    other = make_corpus(tmp_path / "other", n=3)
    with pytest.raises(ValueError, match="corpus"):
        tokenize_manifest(other, MeanAmpCodec(), root, progress=False)
    # A store written in another format, complete or not.
    meta = json.loads((store.path / META).read_text())
    for complete in (True, False):
        (store.path / META).write_text(json.dumps({**meta, "format_version": 0, "complete": complete}))
        with pytest.raises(ValueError, match="format_version: store has 0"):
            tokenize_manifest(manifest, MeanAmpCodec(), root, progress=False)
    with pytest.raises(FileNotFoundError, match="no token store"):
        TokenStore.find(root, MeanAmpCodec(hop=160).config_dict())


def test_bad_files_skipped_and_reported(tmp_path):
    manifest = make_corpus(tmp_path, n=4)
    wav = tmp_path / "wav"
    sf.write(wav / "empty.wav", np.zeros(0), SR, subtype="PCM_16")
    (wav / "corrupt.wav").write_bytes(b"RIFF\x00\x01garbage that is not a wave file" * 3)
    sf.write(wav / "short.wav", np.full(10, 0.3), SR, subtype="PCM_16")  # < one 80-sample frame
    sf.write(wav / "nan.wav", np.full(400, np.nan), SR, subtype="FLOAT")
    sf.write(wav / "loud.wav", np.full(400, 0.95), SR, subtype="FLOAT")  # the codec rejects it
    bad = {
        "missing": "load failed",
        "empty": "empty",
        "corrupt": "load failed",
        "short": "too short",
        "nan": "non-finite",
        "loud": "encode failed: ValueError: clipping input",
    }
    lines = manifest.read_text() + "".join(
        json.dumps({"path": f"wav/{k}.wav", "duration": 0.05, "id": k}) + "\n" for k in bad
    )
    manifest.write_text(lines)
    store = tokenize_manifest(manifest, PickyCodec(), tmp_path / "store", batch_size=4, progress=False)
    good = {"u0", "u1", "u2", "u3", "wav/long.wav@0.500"}
    check_codes(store, MeanAmpCodec(), manifest, expect_ids=good)
    report = json.loads((store.path / REPORT).read_text())
    assert report["n_items"] == 5 and store.meta["n_skipped"] == 6
    got = {r["id"]: r for r in report["skipped"]}
    assert set(got) == set(bad)
    for k, reason in bad.items():
        assert got[k]["reason"].startswith(reason) and got[k]["path"] == str(wav / f"{k}.wav")


def test_codec_failing_everywhere_is_not_marked_complete(tmp_path):
    manifest = tmp_path / "loud.jsonl"
    sf.write(tmp_path / "loud.wav", np.full(400, 0.95), SR, subtype="FLOAT")
    write_manifest(manifest, [Utterance(path="loud.wav", duration=0.05)])
    with pytest.raises(RuntimeError, match="failed to encode all 1"):
        tokenize_manifest(manifest, PickyCodec(), tmp_path / "store", progress=False)
    meta = json.loads((tmp_path / "store" / store_key(PickyCodec().config_dict()) / META).read_text())
    assert meta["complete"] is False


def test_fitted_state_saved_and_reloaded(tmp_path):
    manifest = make_corpus(tmp_path)
    root = tmp_path / "store"
    first = FittedMeanAmpCodec(fail_after=2)
    with pytest.raises(Interrupted):
        tokenize_manifest(manifest, first, root, batch_size=2, shard_items=2, fit_max_seconds=0.5, progress=False)
    assert first.fit_calls == 1 and 0 < first.fit_samples <= 0.5 * SR
    path = root / store_key(first.config_dict())
    assert (path / CODEC_STATE).is_file()
    # Resuming must encode with the state the stored codes were made with, not refit.
    resumed = FittedMeanAmpCodec()
    store = tokenize_manifest(manifest, resumed, root, batch_size=2, shard_items=2, progress=False)
    assert resumed.fit_calls == 0 and torch.equal(resumed.scale, first.scale)
    check_codes(store, resumed, manifest)
    reused = FittedMeanAmpCodec()
    tokenize_manifest(manifest, reused, root, progress=False)
    assert reused.fit_calls == reused.encode_calls == 0 and reused.fitted and torch.equal(reused.scale, first.scale)
    assert torch.equal(store.load_codec_state()["scale"], first.scale)
    # The fit sample is deterministic: a fresh store fits the same scale.
    again = FittedMeanAmpCodec()
    tokenize_manifest(manifest, again, tmp_path / "store2", fit_max_seconds=0.5, progress=False)
    assert again.fit_calls == 1 and torch.equal(again.scale, first.scale)


def test_dtype_choice(tmp_path):
    assert codes_dtype(2) == codes_dtype(256) == np.uint8
    assert codes_dtype(257) == codes_dtype(65536) == np.uint16
    assert codes_dtype(65537) == np.int32
    manifest = make_corpus(tmp_path, n=2)
    for k, dt in ((16, np.uint8), (1000, np.uint16)):
        store = tokenize_manifest(manifest, MeanAmpCodec(codebook_size=k), tmp_path / "store", progress=False)
        assert store.meta["dtype"] == np.dtype(dt).name and store.codes(0).dtype == dt
        assert np.load(store.path / "shard-00000.npy", mmap_mode="r").dtype == dt
        check_codes(store, MeanAmpCodec(codebook_size=k), manifest)


def test_cli(tmp_path, capsys):
    from audiolm.cli.tokenize import main

    manifest = make_corpus(tmp_path, n=3)
    cfg = tmp_path / "codec.yaml"
    cfg.write_text(f"_target_: {MeanAmpCodec.__module__}.MeanAmpCodec\nhop: 160\n")
    main(
        [
            "--manifest",
            str(manifest),
            "--store-root",
            str(tmp_path / "store"),
            "--codec-config",
            str(cfg),
            "--no-progress",
        ]
    )
    assert "4 items" in capsys.readouterr().out
    check_codes(
        TokenStore.find(tmp_path / "store", MeanAmpCodec(hop=160).config_dict()), MeanAmpCodec(hop=160), manifest
    )


def test_a_fitted_codec_keeps_its_state_and_a_different_one_is_refused(tmp_path):
    manifest = make_corpus(tmp_path)
    trained = FittedMeanAmpCodec()
    trained.load_fitted_state({"scale": torch.tensor(0.25)})  # e.g. from a checkpoint
    store = tokenize_manifest(manifest, trained, tmp_path / "a", progress=False)
    assert trained.fit_calls == 0 and torch.equal(store.load_codec_state()["scale"], torch.tensor(0.25))
    other = FittedMeanAmpCodec()
    other.load_fitted_state({"scale": torch.tensor(0.5)})
    with pytest.raises(DataError, match="differs from the one the token store"):
        tokenize_manifest(manifest, other, tmp_path / "a", progress=False)


def test_codec_that_is_not_batch_invariant_is_encoded_one_clip_at_a_time(tmp_path):
    manifest = make_corpus(tmp_path)
    codec = MeanAmpCodec()
    codec.batch_invariant = False  # as SpeechTokenizer: codes would depend on the batch's padding
    store = tokenize_manifest(manifest, codec, tmp_path / "store", batch_size=4, progress=False)
    assert codec.encode_calls == codec.items_encoded == len(store)
    check_codes(store, MeanAmpCodec(), manifest)
