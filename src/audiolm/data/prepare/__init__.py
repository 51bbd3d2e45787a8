"""Prepare stage: media sources -> decoded, normalised, segmented clips -> a manifest."""
