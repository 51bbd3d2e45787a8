"""Corpora made or read here: the synthetic espeak speech and caption corpora, and MusicCaps."""
