"""Parallel all-codebook TTS: every level of a frame at once (masked demasking or AR)."""
