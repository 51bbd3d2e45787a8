"""Data flow from raw files to batches: prepare/ -> corpora/ -> tokens/ -> per-family datasets and datamodules."""
