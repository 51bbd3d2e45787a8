"""Text front-ends: phonemes through espeak-ng, sentence splitting, transcription."""
