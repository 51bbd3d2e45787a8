"""Metrics: audio reconstruction, TTS (WER/CER, speaker similarity) and captioning."""
