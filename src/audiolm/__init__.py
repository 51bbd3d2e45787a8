"""audiolm: an experiment suite for audio language models (codec x backbone x task, Hydra + Lightning)."""
