"""How the parallel TTS model runs its backbone: masked NAR with a duration head, or AR."""
