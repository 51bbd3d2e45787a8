"""Tokens stage: encode a manifest once per codec config into a memory-mapped token store."""
