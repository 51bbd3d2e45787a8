"""audiolm: an experiment suite for audio language models."""
