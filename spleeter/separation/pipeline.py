"""The separation pipeline, run segment by segment so that memory does not grow with length.

Upstream separates a whole file at once: STFT of the waveform (``frame_length`` zeros prepended,
end zero-padded to a whole frame), magnitudes cut into non-overlapping blocks of ``T`` frames,
one network pass, masks, inverse STFT cropped back to the input's length. Everything but the
last step is frame-local, so the same result can be produced a segment at a time, provided that

- a segment is a whole number of ``T``-frame blocks counted from the first frame (the network
  then sees exactly upstream's blocks), and
- each segment's inverse STFT also gets the last ``(frame_length - 1) // frame_step`` masked
  frames of the previous segment: every sample it emits then receives the contribution of
  every frame overlapping it, as in the one-piece transform.

Segments therefore give the same samples as separating in one piece (the tests check it). The
multichannel Wiener filter needs two passes: norbert estimates each source's spatial covariances
over the whole signal, so the first pass accumulates them and the second filters segment by
segment (the network runs twice).
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from .. import SpleeterError
from ..audio.spectrogram import frame_count, frames_stft, overlap_add
from .family import SeparationFamily, TrackSeparation

DEFAULT_SEGMENT_BLOCKS = 1
"""Blocks of ``T`` frames per segment: 512 frames, about 11.9 s at 44.1 kHz (measured: smaller
segments need less memory and, being cache-friendlier, run no slower)."""

Reader = Callable[[int], np.ndarray]
"""``read(n)``: up to ``n`` float32 stereo samples ``(n, 2)``; fewer only at the end."""


@dataclass
class Separation:
    """A track being separated: its sources (known before the first piece) and the pieces."""

    sources: list[str]
    pieces: Iterator[dict[str, np.ndarray]]
    """Consecutive output pieces ``{source: (n, 2)}``; concatenated, the input's length."""


class SeparationPipeline:
    """Turns a stream of mixture samples into streams of separated samples, one per source.

    Args:
        params: the configuration (frame sizes and ``T``).
        family: what a separation is (see :func:`spleeter.separation.separation_family`).
        segment_blocks: ``T``-frame blocks per segment; ``None`` for a single segment.
    """

    def __init__(
        self,
        params: dict,
        family: SeparationFamily,
        segment_blocks: int | None = DEFAULT_SEGMENT_BLOCKS,
    ) -> None:
        self.frame_length = int(params["frame_length"])
        self.frame_step = int(params["frame_step"])
        self.T = int(params["T"])
        self.family = family
        if segment_blocks is not None and segment_blocks < 1:
            raise SpleeterError(f"segment_blocks must be at least 1 (got {segment_blocks})")
        self.segment_frames = None if segment_blocks is None else segment_blocks * self.T
        self.carried_frames = (self.frame_length - 1) // self.frame_step

    def run(self, read: Reader, reread: Callable[[], Reader] | None = None) -> Separation:
        """Separate the samples ``read`` hands out.

        A two-pass family observes the whole input first (this call returns once it has, so
        the sources are known); ``reread`` (a fresh reader over the same input) lets both
        passes run in bounded memory. Without it, a two-pass family takes the input whole.
        """
        track = self.family.track()
        if track.passes == 1:
            return Separation(track.sources(), self._overlap_add(self._segments(read), track))
        if reread is None:
            (whole,) = list(self._segments(read, whole=True))
            track.observe(whole[0])
            return Separation(track.sources(), self._overlap_add(iter([whole]), track))
        for spectrum, *_ in self._segments(read):
            track.observe(spectrum)
        return Separation(track.sources(), self._overlap_add(self._segments(reread()), track))

    def _segments(
        self, read: Reader, whole: bool = False
    ) -> Iterator[tuple[np.ndarray, int, int, bool]]:
        """The mixture STFT segment by segment: ``(spectrum, first frame, end, final)``, where
        ``end`` is the padded position up to which the segment's output is final."""
        N, H = self.frame_length, self.frame_step
        buffer = _Buffer(N)
        start = 0
        segment_frames = None if whole else self.segment_frames
        while True:
            wanted_end = None if segment_frames is None else start + segment_frames
            final = not buffer.fill(read, None if wanted_end is None else (wanted_end - 1) * H + N)
            if final:
                if buffer.samples_read == 0:
                    raise SpleeterError("no samples to separate")
                stop = frame_count(buffer.samples_read, N, H)
                end = buffer.samples_read + N
            else:
                stop = wanted_end
                end = stop * H
            yield frames_stft(buffer.window(start * H, (stop - 1) * H + N), N, H), start, end, final
            if final:
                return
            buffer.discard_before(stop * H)
            start = stop

    def _overlap_add(
        self, segments: Iterator[tuple[np.ndarray, int, int, bool]], track: TrackSeparation
    ) -> Iterator[dict[str, np.ndarray]]:
        """Inverse STFT of each segment's separated STFTs, with the previous segment's last
        frames carried over so that every emitted sample gets all its frames."""
        N, H = self.frame_length, self.frame_step
        carried: dict[str, np.ndarray] = {}
        for spectrum, start, end, _ in segments:
            first_frame = start - len(next(iter(carried.values()), ()))
            pieces = {}
            for name, frames in track.separate(spectrum).items():
                with_carry = _join_frames(carried[name], frames) if name in carried else frames
                signal = overlap_add(with_carry, N, H)
                emit_start = max(start * H, N)  # padded samples before N are the front padding
                pieces[name] = signal[emit_start - first_frame * H : end - first_frame * H]
                carried[name] = frames[len(frames) - self.carried_frames :]
            yield pieces


def _join_frames(first: np.ndarray, then: np.ndarray) -> np.ndarray:
    """STFTs ``(frames, bins, C)`` joined along frames, laid out channel by channel in memory
    (a transposed view), as the inverse STFT reads them and the mask family writes them."""
    by_channel = np.concatenate([np.moveaxis(first, -1, 0), np.moveaxis(then, -1, 0)], axis=1)
    return np.moveaxis(by_channel, 0, -1)


class _Buffer:
    """The padded mixture signal (``frame_length`` zeros, the samples, end zeros), kept only
    from the current segment's first sample on."""

    def __init__(self, front_padding: int) -> None:
        self._chunks: list[np.ndarray] = [np.zeros((front_padding, 2), np.float32)]
        self._start = 0  # padded position of the first sample held
        self._end = front_padding  # padded position after the last sample held
        self._front = front_padding
        self._exhausted = False

    @property
    def samples_read(self) -> int:
        return self._end - self._front

    def fill(self, read: Reader, end: int | None) -> bool:
        """Read until the padded position ``end`` is held (None: everything); False once the
        input ended first."""
        while not self._exhausted and (end is None or self._end < end):
            wanted = (end - self._end) if end is not None else 1 << 20
            chunk = read(wanted)
            if chunk.shape[0]:
                self._chunks.append(chunk)
                self._end += chunk.shape[0]
            if chunk.shape[0] < wanted:
                self._exhausted = True
        return end is not None and self._end >= end

    def window(self, start: int, stop: int) -> np.ndarray:
        """Padded samples ``[start, stop)``, zeros past the end of the input."""
        held = np.concatenate(self._chunks) if len(self._chunks) > 1 else self._chunks[0]
        self._chunks = [held]
        piece = held[start - self._start : stop - self._start]
        if piece.shape[0] < stop - start:
            piece = np.concatenate(
                [piece, np.zeros((stop - start - piece.shape[0], 2), np.float32)]
            )
        return piece

    def discard_before(self, position: int) -> None:
        held = np.concatenate(self._chunks) if len(self._chunks) > 1 else self._chunks[0]
        self._chunks = [held[position - self._start :]]
        self._start = position
