"""Shared decoding: logits processors and samplers, and the cached decoding loop."""
