"""The audio adapter interface: how waveforms are loaded from and saved to files."""

from abc import ABC, abstractmethod
from importlib import import_module
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .. import SpleeterError
from ..types import AudioDescriptor, Signal
from . import Codec
from .streams import ArrayReader, AudioReader, AudioWriter, BufferedWriter

DEFAULT_ADAPTER = "spleeter.audio.ffmpeg.FFMPEGProcessAudioAdapter"
"""The adapter ``AudioAdapter.default()`` makes (named, so the base needs no import of it)."""


class AudioAdapter(ABC):
    """Loads and saves waveforms; ``AudioAdapter.default()`` is the ffmpeg-backed one.

    A waveform is a float32 array of shape ``(n_samples, n_channels)``.
    """

    _DEFAULT: Optional["AudioAdapter"] = None
    """The shared default instance, created on first use."""

    @abstractmethod
    def load(
        self,
        audio_descriptor: AudioDescriptor,
        offset: float | None = None,
        duration: float | None = None,
        sample_rate: float | None = None,
        dtype: Any = np.float32,
    ) -> Signal:
        """Load ``duration`` seconds from ``offset`` seconds, resampled to ``sample_rate``.

        Returns:
            ``(waveform, sample_rate)``.

        Raises:
            SpleeterError: the file is missing, unreadable or holds no audio.
        """

    @abstractmethod
    def save(
        self,
        path: Path | str,
        data: np.ndarray,
        sample_rate: float,
        codec: Codec | None = None,
        bitrate: str | None = None,
    ) -> None:
        """Encode ``data`` into ``path`` with ``codec`` at ``bitrate``.

        Raises:
            SpleeterError: the file cannot be written.
        """

    def open_reader(
        self,
        audio_descriptor: AudioDescriptor,
        offset: float | None = None,
        duration: float | None = None,
        sample_rate: float | None = None,
    ) -> AudioReader:
        """A reader over the same samples ``load`` returns, handed out in chunks.

        This default loads the whole file; adapters that can decode progressively override it
        so that long files need bounded memory.
        """
        waveform, rate = self.load(audio_descriptor, offset, duration, sample_rate)
        return ArrayReader(np.asarray(waveform, dtype=np.float32), int(float(rate)))

    def open_writer(
        self,
        path: Path | str,
        sample_rate: float,
        channels: int,
        codec: Codec | None = None,
        bitrate: str | None = None,
    ) -> AudioWriter:
        """A writer producing the same file ``save`` would, fed in chunks.

        This default buffers the samples and calls ``save`` when finished; adapters that can
        encode progressively override it.
        """
        return BufferedWriter(self, str(path), int(float(sample_rate)), codec, bitrate)

    @classmethod
    def default(cls) -> "AudioAdapter":
        """The shared ffmpeg-backed adapter."""
        if AudioAdapter._DEFAULT is None:
            AudioAdapter._DEFAULT = cls.get(DEFAULT_ADAPTER)
        return AudioAdapter._DEFAULT

    @classmethod
    def get(cls, descriptor: str | None) -> "AudioAdapter":
        """A new adapter from a dotted class path (``package.module.Class``); empty: default."""
        if not descriptor:
            return cls.default()
        module_path, _, class_name = str(descriptor).rpartition(".")
        try:
            adapter_class = getattr(import_module(module_path), class_name)
        except (ImportError, AttributeError, ValueError) as error:
            raise SpleeterError(
                f"Audio adapter {descriptor} cannot be imported: {error}"
            ) from error
        if not (isinstance(adapter_class, type) and issubclass(adapter_class, AudioAdapter)):
            raise SpleeterError(f"{class_name} is not a valid AudioAdapter class")
        return adapter_class()
