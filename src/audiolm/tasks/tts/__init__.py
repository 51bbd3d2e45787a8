"""The TTS family: what both codec-LM TTS models share (speech task, prompts, synthesis, samples)."""
