"""Reading and writing audio piece by piece, so that long files need bounded memory.

An :class:`AudioReader` hands out a file's samples in chunks; an :class:`AudioWriter` takes
them in chunks and publishes the file only once it is complete: ``finish()`` leaves the encoded
data in a hidden temporary file next to the target, ``commit()`` renames it into place and
``abort()`` removes it. Several writers (one per stem) can thus be committed together, or none.

Adapters that only implement whole-file ``load``/``save`` get the in-memory versions below.
"""

import contextlib
import os
import secrets
from abc import ABC, abstractmethod
from typing import Any, Protocol

import numpy as np

from .. import SpleeterError


class WholeFileSaver(Protocol):
    """What :class:`BufferedWriter` needs of an adapter: its whole-file ``save``."""

    def save(
        self, path: str, data: np.ndarray, sample_rate: float, codec: Any, bitrate: Any
    ) -> None: ...


class AudioReader(ABC):
    """Samples of one input, read in order."""

    sample_rate: int
    channels: int
    duration: float | None
    """Expected length in seconds (for progress), or None when unknown."""

    @abstractmethod
    def read(self, n_samples: int) -> np.ndarray:
        """Up to ``n_samples`` float32 samples ``(n, channels)``; fewer only at the end.

        Raises:
            SpleeterError: decoding failed.
        """

    def close(self) -> None:  # noqa: B027 (optional hook: nothing to release by default)
        """Release the input (idempotent)."""

    def __enter__(self) -> "AudioReader":
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()


class ArrayReader(AudioReader):
    """Reads from an in-memory waveform."""

    def __init__(self, waveform: np.ndarray, sample_rate: int) -> None:
        self._waveform = waveform if waveform.ndim == 2 else waveform.reshape(-1, 1)
        self._position = 0
        self.sample_rate = int(sample_rate)
        self.channels = self._waveform.shape[1]
        self.duration = self._waveform.shape[0] / self.sample_rate

    def read(self, n_samples: int) -> np.ndarray:
        chunk = self._waveform[self._position : self._position + n_samples]
        self._position += chunk.shape[0]
        return chunk


def temporary_path(path: str) -> str:
    """A hidden, unique name next to ``path`` with the same extension (encoders pick the
    container from it)."""
    directory, name = os.path.split(path)
    stem, extension = os.path.splitext(name)
    return os.path.join(directory, f".{stem}.part-{secrets.token_hex(4)}{extension}")


def publish(temporary: str, path: str) -> None:
    """Move a finished ``temporary`` file over ``path``, keeping the mode of a file it replaces."""
    with contextlib.suppress(OSError):
        import shutil

        shutil.copymode(path, temporary)
    try:
        os.replace(temporary, path)
    except OSError as error:
        raise SpleeterError(f"{path}: cannot write file ({error.strerror or error})") from error


def remove_quietly(path: str) -> None:
    """Delete ``path`` if it exists."""
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


class AudioWriter(ABC):
    """Writes one output file in chunks; nothing appears at ``path`` before :meth:`commit`."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.temporary = temporary_path(path)

    @abstractmethod
    def write(self, data: np.ndarray) -> None:
        """Append samples ``(n, channels)``."""

    @abstractmethod
    def finish(self) -> None:
        """Complete the temporary file. Raises SpleeterError (naming ``path``) on failure."""

    def commit(self) -> None:
        """Rename the finished temporary file to ``path``."""
        publish(self.temporary, self.path)

    def abort(self) -> None:
        """Drop everything written so far (never raises)."""
        remove_quietly(self.temporary)


class BufferedWriter(AudioWriter):
    """Collects the chunks in memory and saves them with the adapter's whole-file ``save``."""

    def __init__(
        self,
        adapter: WholeFileSaver,
        path: str,
        sample_rate: int,
        codec: Any = None,
        bitrate: str | None = None,
    ) -> None:
        super().__init__(path)
        self._adapter = adapter
        self._arguments = (sample_rate, codec, bitrate)
        self._chunks: list[np.ndarray] = []

    def write(self, data: np.ndarray) -> None:
        self._chunks.append(np.asarray(data))

    def finish(self) -> None:
        data = np.concatenate(self._chunks) if self._chunks else np.zeros((0, 2), np.float32)
        self._chunks = []
        try:
            self._adapter.save(self.temporary, data, *self._arguments)
        except SpleeterError as error:
            remove_quietly(self.temporary)
            raise SpleeterError(str(error).replace(self.temporary, self.path)) from error
