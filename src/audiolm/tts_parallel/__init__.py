"""Parts of the parallel all-codebook TTS model (``task=tts_parallel``): audio encoders and decoder,
the sequence layout with its segmented attention mask, masking schedules, and the two modes
(masked NAR demasking, pure AR over all levels of a frame)."""
