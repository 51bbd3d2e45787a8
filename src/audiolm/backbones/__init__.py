"""Sequence backbones over embeddings (Mamba, Mamba-2, Llama, Transformer), each with its decoding cache."""
