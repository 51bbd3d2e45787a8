"""Codebook patterns: codes [Q, F] <-> step sequences (flatten, delay, parallel)."""

from audiolm.patterns.base import Pattern
from audiolm.patterns.delay import DelayPattern
from audiolm.patterns.flatten import FlattenPattern
from audiolm.patterns.parallel import ParallelPattern

__all__ = ["Pattern", "FlattenPattern", "DelayPattern", "ParallelPattern"]
