"""The TTS family: the VALL-E and parallel models and what they share (speech model and task, prompts, samples)."""
