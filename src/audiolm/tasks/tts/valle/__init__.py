"""VALL-E style TTS: level 0 autoregressive, levels 1..Q-1 non-autoregressive."""
