"""Signal I/O: read and write audio files, stream any media, measure loudness, cut segments."""
