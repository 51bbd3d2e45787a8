"""Audio codecs: waveform <-> discrete codes [B, Q, F], one file per codec behind one interface."""
