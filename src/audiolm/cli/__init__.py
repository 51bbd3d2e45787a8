"""Thin command-line entry points: prepare, tokenize, synthesize, export, check_weights, webui."""
