"""Streaming media decoding: any audio or video file -> mono float32 blocks at a chosen rate.

WAV/FLAC/OGG/MP3 (and the other formats libsndfile knows) are read with soundfile; everything
else (m4a/aac, opus, mp4/mkv/webm video -> its first audio track) and any file soundfile rejects
go through PyAV, which bundles ffmpeg. Files are opened as Python file objects, so names that are
not valid UTF-8 (bytes names on Linux) work too.

Nothing is ever read whole: ``blocks()`` yields ``BLOCK_FRAMES``-sized pieces, downmixed to mono
(the channel mean) and resampled with a streaming soxr resampler, so a 1-hour file costs the memory
of one block. A decoding error part-way (a truncated file) ends the stream early and is recorded
in ``stopped_early``; the caller decides what to keep.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np
import soundfile as sf
import soxr

from audiolm.errors import DataError

BLOCK_FRAMES = 1 << 16
SALVAGE_FRAMES = 1 << 12
# Formats libsndfile reads natively; soundfile gets the first try on these.
SOUNDFILE_EXTENSIONS = frozenset(
    {".wav", ".wave", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff", ".w64", ".rf64", ".caf", ".au", ".snd"}
)
MEDIA_EXTENSIONS = SOUNDFILE_EXTENSIONS | frozenset(
    {".opus", ".m4a", ".aac", ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".wma", ".avi", ".ac3", ".mka", ".3gp"}
)


def display_path(path: Path | str) -> str:
    """A printable, JSON-safe form of a path: undecodable name bytes appear as ``\\xe9`` escapes."""
    return str(path).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _short(e: BaseException) -> str:
    """The library's own message, without the file-object repr some of them add."""
    msg = getattr(e, "error_string", None) or getattr(e, "strerror", None) or str(e)
    return f"{type(e).__name__}: {str(msg).strip()}"


class MediaStream:
    """One open media file: ``sample_rate`` and ``channels`` of the source, ``backend`` that reads it.

    Use as a context manager; ``blocks(rate, offset, duration)`` streams a window of it.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.stopped_early = ""  # why decoding ended before the end of the file, if it did
        self._fh: BinaryIO = self.path.open("rb")
        self._sf: sf.SoundFile | None = None
        self._av: av.container.InputContainer | None = None
        errors = []
        if self.path.suffix.lower() in SOUNDFILE_EXTENSIONS:
            try:
                self._sf = sf.SoundFile(self._fh)
            except Exception as e:  # libsndfile says "unknown format" for files it does not read; try ffmpeg
                errors.append(f"soundfile: {_short(e)}")
                self._fh.seek(0)
        if self._sf is None:
            try:
                self._open_av()
            except DataError:
                self.close()
                raise
            except Exception as e:  # noqa: BLE001 - whatever ffmpeg rejects, this one file is unusable
                errors.append(f"PyAV/ffmpeg: {_short(e)}")
                self.close()
                raise DataError("not decodable (" + "; ".join(errors) + ")") from None
        self.backend = "soundfile" if self._sf is not None else f"pyav {av.__version__}"

    def _open_av(self) -> None:
        self._av = av.open(self._fh, mode="r")
        if not self._av.streams.audio:
            kinds = sorted({s.type for s in self._av.streams}) or ["none"]
            raise DataError(f"no audio track (streams: {', '.join(kinds)})")
        stream = self._av.streams.audio[0]
        if not stream.codec_context.sample_rate:
            raise DataError("the audio track declares no sample rate")

    @property
    def sample_rate(self) -> int:
        return self._sf.samplerate if self._sf is not None else self._av.streams.audio[0].codec_context.sample_rate

    @property
    def channels(self) -> int:
        if self._sf is not None:
            return self._sf.channels
        return self._av.streams.audio[0].codec_context.layout.nb_channels

    @property
    def duration(self) -> float | None:
        """Seconds, as the file's header states them (None when it does not)."""
        if self._sf is not None:
            return self._sf.frames / self._sf.samplerate
        stream = self._av.streams.audio[0]
        if stream.duration is not None:
            return float(stream.duration * stream.time_base)
        return self._av.duration / av.time_base if self._av.duration is not None else None

    def blocks(
        self,
        rate: int | None = None,
        offset: float = 0.0,
        duration: float | None = None,
        max_samples: int | None = None,
    ) -> Iterator[np.ndarray]:
        """Mono float32 blocks [n] at ``rate`` (default: the source rate) of [offset, offset + duration).

        ``max_samples`` caps the output (at ``rate``); it lets a second pass stop where the first one ended.
        """
        rate = rate or self.sample_rate
        source = self._sf_blocks(offset, duration) if self._sf is not None else self._av_blocks(offset, duration)
        resampler = None if rate == self.sample_rate else soxr.ResampleStream(self.sample_rate, rate, 1, "float32")
        left = max_samples if max_samples is not None else -1
        for block in source:
            out = block if resampler is None else resampler.resample_chunk(block)
            if left >= 0:
                out, left = out[:left], left - min(left, len(out))
            if len(out):
                yield out
            if left == 0:
                return
        if resampler is not None:
            tail = resampler.resample_chunk(np.zeros(0, np.float32), last=True)
            if left >= 0:
                tail = tail[:left]
            if len(tail):
                yield tail

    def _sf_blocks(self, offset: float, duration: float | None) -> Iterator[np.ndarray]:
        f = self._sf
        position = min(int(round(offset * f.samplerate)), f.frames) if f.seekable() else 0
        f.seek(position)
        remaining = -1 if duration is None else int(round(duration * f.samplerate))
        step = BLOCK_FRAMES
        while remaining != 0:
            n = step if remaining < 0 else min(step, remaining)
            try:
                data = f.read(n, dtype="float32", always_2d=True)  # [n, C]
            except (sf.LibsndfileError, RuntimeError) as e:
                if step > SALVAGE_FRAMES and f.seekable():
                    # A failed read returns nothing: re-read that block in small pieces to keep what
                    # precedes the damage (a truncated FLAC loses at most SALVAGE_FRAMES more).
                    f.seek(position)
                    step = SALVAGE_FRAMES
                    continue
                self.stopped_early = _short(e)
                return
            if not len(data):
                return
            position += len(data)
            remaining -= len(data) if remaining > 0 else 0
            yield data.mean(axis=1, dtype=np.float32)

    def _av_blocks(self, offset: float, duration: float | None) -> Iterator[np.ndarray]:
        stream = self._av.streams.audio[0]
        rate = stream.codec_context.sample_rate
        if offset > 0:
            # not seekable: decode from the start; samples before offset are dropped below
            with contextlib.suppress(av.error.FFmpegError):
                self._av.seek(int(offset * av.time_base))  # lands on a keyframe at or before offset
        skip_to = int(round(offset * rate))  # absolute sample index of the window start
        end = None if duration is None else skip_to + int(round(duration * rate))
        position = None  # absolute index of the next decoded sample
        convert = av.AudioResampler(format="fltp")  # any sample format -> planar float, same layout and rate
        try:
            for frame in self._av.decode(stream):
                if frame.sample_rate != rate:  # e.g. a stream that switches rate: the blocks would be mistimed
                    self.stopped_early = f"sample rate changed from {rate} to {frame.sample_rate} Hz mid-stream"
                    return
                if position is None or frame.pts is not None:
                    position = int(round(frame.pts * frame.time_base * rate)) if frame.pts is not None else 0
                for planar in convert.resample(frame):
                    x = planar.to_ndarray().mean(axis=0, dtype=np.float32)  # [C, n] -> [n]
                    start, position = position, position + len(x)
                    lo = max(skip_to - start, 0)
                    hi = len(x) if end is None else min(len(x), end - start)
                    if hi > lo:
                        yield x[lo:hi]
                if end is not None and position >= end:
                    return
        except (av.error.FFmpegError, ValueError) as e:  # ValueError: the resampler met a layout change
            self.stopped_early = _short(e)

    def close(self) -> None:
        for handle in (self._sf, self._av, self._fh):
            if handle is not None:
                handle.close()

    def __enter__(self) -> MediaStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_media(path: str | Path) -> MediaStream:
    """Open ``path`` for streaming; raises ``DataError`` saying why when it cannot be decoded."""
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found")
    if path.stat().st_size == 0:
        raise DataError("empty file (0 bytes)")
    try:
        return MediaStream(path)
    except OSError as e:
        raise DataError(f"cannot be read: {_short(e)}") from None
