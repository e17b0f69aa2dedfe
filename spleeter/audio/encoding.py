"""How separated stems are encoded: sample format (bit depth), output sample rate, clipping.

The defaults are upstream's: 16-bit WAV at the model's sample rate, samples past full scale
clamped (what the 16-bit encoder did silently; here a warning says how many). Demucs' spellings:
``--int24``, ``--float32``, ``--clip-mode rescale|clamp``.
"""

import os
import tempfile
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from .. import SpleeterError
from ..utils.logging import logger
from . import ClipMode, Codec
from .streams import AudioWriter


class SampleFormat(StrEnum):
    """Samples of an uncompressed (WAV) or lossless (FLAC) output file."""

    int16 = "int16"
    int24 = "int24"
    float32 = "float32"


FORMAT_CODECS: dict[SampleFormat, tuple[Codec, ...]] = {
    SampleFormat.int16: (Codec.WAV, Codec.FLAC),
    SampleFormat.int24: (Codec.WAV, Codec.FLAC),
    SampleFormat.float32: (Codec.WAV,),
}
"""The codecs that can store each sample format."""


@dataclass(frozen=True)
class OutputFormat:
    """Encoding of the output files; the default is upstream's."""

    sample_format: SampleFormat | None = None
    """None: the codec's default (16-bit for WAV and FLAC)."""
    sample_rate: int | None = None
    """None: the model's sample rate (resampled by the encoder otherwise)."""
    clip_mode: ClipMode = ClipMode.clamp

    @property
    def encoder_options(self) -> dict[str, object]:
        """What the adapter's ``open_writer`` must be told (nothing for the default)."""
        options: dict[str, object] = {}
        if self.sample_format is not None:
            options["sample_format"] = self.sample_format
        if self.sample_rate is not None:
            options["output_sample_rate"] = self.sample_rate
        return options

    def check(self, codec: Codec) -> None:
        """Refuse, in one line and before any work, what ``codec`` cannot store."""
        if self.sample_format is not None and codec not in FORMAT_CODECS[self.sample_format]:
            allowed = " or ".join(str(c) for c in FORMAT_CODECS[self.sample_format])
            raise SpleeterError(
                f"--{self.sample_format} needs -c {allowed} (got -c {codec}: a lossy codec has "
                "no bit depth)"
            )
        if self.sample_rate is not None and not 8000 <= self.sample_rate <= 192000:
            raise SpleeterError(
                f"--sample-rate must be in 8000..192000 Hz (got {self.sample_rate})"
            )


class ClippingWriter(AudioWriter):
    """Applies a :class:`ClipMode` in front of another writer.

    ``rescale`` needs the stem's peak before its first sample is encoded: the samples are
    spooled to a temporary raw float32 file next to the output, then scaled and encoded at
    :meth:`finish` (a stem's size on disk, never its samples in memory).
    """

    def __init__(self, inner: AudioWriter, mode: ClipMode) -> None:
        self.inner = inner
        self.path = inner.path
        self.temporary = inner.temporary
        self.mode = ClipMode(mode)
        self.peak = 0.0
        self.clipped = 0
        self._spool = None
        if self.mode is ClipMode.rescale:
            directory = os.path.dirname(self.path) or os.curdir
            self._spool = tempfile.TemporaryFile(dir=directory, prefix=".spool-")  # noqa: SIM115

    def write(self, data: np.ndarray) -> None:
        data = np.asarray(data, dtype=np.float32)
        if data.size:
            self.peak = max(self.peak, float(np.max(np.abs(data))))
        if self.mode is ClipMode.rescale:
            self._spool.write(np.ascontiguousarray(data, "<f4").tobytes())  # type: ignore[union-attr]
            return
        if self.mode is ClipMode.clamp:
            over = np.abs(data) > 1
            if over.any():
                self.clipped += int(over.sum())
                data = np.clip(data, -1.0, 1.0)
        self.inner.write(data)

    def finish(self) -> None:
        if self._spool is not None:
            scale = 1.0 / max(1.01 * self.peak, 1.0)
            channels = getattr(self.inner, "channels", 2)
            self._spool.seek(0)
            block = 1 << 16
            while chunk := self._spool.read(block * 4 * channels):
                samples = np.frombuffer(chunk, "<f4").reshape(-1, channels)
                self.inner.write(samples * scale if scale != 1.0 else samples)
            self._spool.close()
            self._spool = None
            if scale != 1.0:
                logger.info(f"{self.path}: peak {self.peak:.2f}, rescaled by {scale:.3f}")
        if self.clipped:
            logger.warning(
                f"{self.path}: {self.clipped} samples past full scale clipped (peak "
                f"{self.peak:.2f}); --clip-mode rescale scales the stem down instead"
            )
        self.inner.finish()

    def commit(self) -> None:
        self.inner.commit()

    def abort(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None
        self.inner.abort()
