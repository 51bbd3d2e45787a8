"""The audio captioner family: Whisper encoder -> projector -> causal LLM."""
