"""The captioner's parts: Whisper features and encoder, projectors, the LLM and its tokenizer, the prompt
layout and decoding. ``audiolm.tasks.caption`` joins them."""
