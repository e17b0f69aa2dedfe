"""The default audio adapter: ``ffmpeg`` and ``ffprobe`` run as subprocesses.

Decoding pipes raw little-endian float32 samples out of ``ffmpeg``; encoding pipes them in.
Every failure of either tool becomes a one-line :class:`~spleeter.SpleeterError` that names the
file. Files are written atomically: ``ffmpeg`` encodes into a hidden temporary file next to the
target, which is then renamed over it, so a failed encode never leaves a partial file behind.
"""

import contextlib
import json
import math
import os
import re
import secrets
import shutil
import subprocess
import tempfile
from typing import IO, Any

import numpy as np

from .. import SpleeterError
from ..types import Signal
from ..utils.logging import logger
from . import Codec
from .adapter import AudioAdapter

PathLike = str | bytes | os.PathLike
"""What the adapter accepts as a file path."""

INSTALL_HINT = (
    "install FFmpeg (e.g. `apt-get install ffmpeg`, `brew install ffmpeg` or "
    "`conda install -c conda-forge ffmpeg`) and make sure ffmpeg and ffprobe are on the PATH"
)
"""How to fix a missing binary."""

_QUIET = ("-hide_banner", "-v", "error")
"""Options that keep ``ffmpeg`` and ``ffprobe`` from printing anything but errors."""

_FFMPEG = ("ffmpeg", "-nostdin", *_QUIET)
"""``ffmpeg`` that never reads the terminal (it would steal the keystrokes of a shell)."""

_LOG_PREFIX = re.compile(r"^\[[^\]]* @ 0x[0-9a-fA-F]+\]\s*")
"""The ``[component @ 0x55d0...]`` prefix of ffmpeg's log lines."""

_READ_CHUNK = 1 << 22
"""Initial size (bytes) of the decode buffer when the output size cannot be estimated."""


def _to_str(path: PathLike) -> str:
    """A path given as ``str``, ``bytes`` or ``Path`` as a string."""
    return os.fsdecode(path)


def _is_url(path: str) -> bool:
    """Whether ``path`` is a URL for ffmpeg (``http://...``) rather than a local file."""
    return re.match(r"^[A-Za-z][A-Za-z0-9+.-]+://", path) is not None


def _timestamp(seconds: float) -> str:
    """``seconds`` as ``H:MM:SS[.ffffff]``, like ``str(timedelta)`` but without a day part."""
    microseconds = round(seconds * 1_000_000)
    whole, fraction = divmod(microseconds, 1_000_000)
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    text = f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{text}.{fraction:06d}" if fraction else text


def _error_line(stderr: str, *paths: str) -> str:
    """The most relevant line of ffmpeg's error output, stripped of prefixes and file names.

    ffmpeg prints the specific cause first and generic follow-ups ("Conversion failed!") after.
    """
    for line in stderr.splitlines():
        line = _LOG_PREFIX.sub("", line.strip())
        for path in paths:
            line = line.removeprefix(f"{path}: ")
        if line:
            return line
    return "unknown error"


def _check_binaries() -> None:
    """Raise if ``ffmpeg`` or ``ffprobe`` is not on the PATH."""
    for binary in ("ffmpeg", "ffprobe"):
        if shutil.which(binary) is None:
            raise SpleeterError(f"{binary} binary not found: {INSTALL_HINT}")


def _run_error(binary: str, error: OSError) -> SpleeterError:
    """A one-line error for a binary that could not be started."""
    return SpleeterError(f"cannot run {binary} ({error.strerror or error}): {INSTALL_HINT}")


def _check_input(path: str) -> None:
    """Raise a clear error for a local input that is missing, a directory or empty."""
    if _is_url(path):
        return
    if not os.path.exists(path):
        raise SpleeterError(f"{path}: file not found")
    if os.path.isdir(path):
        raise SpleeterError(f"{path}: is a directory, not an audio file")
    if os.path.getsize(path) == 0:
        raise SpleeterError(f"{path}: empty file")


def _probe(path: str) -> tuple[int, int, float | None]:
    """Channel count and sample rate of the first audio stream, and the file duration if known."""
    command = ["ffprobe", *_QUIET, "-select_streams", "a:0", "-of", "json"]
    command += ["-show_entries", "stream=channels,sample_rate:format=duration", path]
    try:
        result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    except OSError as error:
        raise _run_error("ffprobe", error) from error
    stderr = result.stderr.decode(errors="replace")
    if result.returncode != 0:
        reason = _error_line(stderr, path)
        raise SpleeterError(f"{path}: not a readable audio file ({reason})")
    try:
        info = json.loads(result.stdout or b"{}")
        streams = info.get("streams") or []
        if not streams:
            raise SpleeterError(f"{path}: no audio stream found")
        channels, rate = int(streams[0]["channels"]), int(streams[0]["sample_rate"])
    except (ValueError, KeyError, TypeError) as error:
        raise SpleeterError(f"{path}: unreadable audio stream description ({error})") from error
    if channels <= 0 or rate <= 0:
        raise SpleeterError(f"{path}: invalid audio stream ({channels} channels, {rate} Hz)")
    try:
        duration: float | None = float(info["format"]["duration"])
    except (KeyError, TypeError, ValueError):
        duration = None
    return channels, rate, duration


def _sample_rate(value: float | None, native: int | None = None) -> int:
    """``value`` as an integer sample rate (``native`` when ``value`` is None)."""
    if value is None and native is not None:
        return native
    try:
        rate = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        rate = math.nan
    if not (math.isfinite(rate) and rate > 0 and rate.is_integer()):
        raise SpleeterError(f"invalid sample rate {value!r}: expected a positive integer")
    return int(rate)


def _check_window(offset: float | None, duration: float | None) -> None:
    """Raise if the requested time window is not valid."""
    if offset is not None and not (math.isfinite(offset) and offset >= 0):
        raise SpleeterError(f"invalid offset {offset!r}: expected seconds >= 0")
    if duration is not None and not (duration > 0):
        raise SpleeterError(f"invalid duration {duration!r}: expected seconds > 0")


def _expected_bytes(
    file_duration: float | None,
    offset: float | None,
    duration: float | None,
    rate: int,
    channels: int,
) -> int:
    """A slight over-estimate of the decoded size in bytes, to size the read buffer once."""
    seconds = file_duration - (offset or 0.0) if file_duration is not None else None
    if duration is not None and math.isfinite(duration):
        seconds = duration if seconds is None else min(seconds, duration)
    if seconds is None:
        return _READ_CHUNK
    frames = (max(seconds, 0.0) * 1.01 + 0.5) * rate
    return max(int(frames) * channels * 4, 1 << 16)


def _read_all(stream: IO[bytes], size_hint: int) -> bytearray:
    """Read ``stream`` to its end into a ``bytearray`` preallocated to ``size_hint`` bytes.

    Reading in place avoids the chunk list and the join of ``communicate()``, and the result is
    writable, so the waveform built on it needs no copy.
    """
    buffer = bytearray(max(size_hint, 1))
    filled = 0
    while True:
        if filled == len(buffer):
            buffer.extend(bytes(len(buffer)))
        with memoryview(buffer) as view:
            count = stream.readinto(view[filled:])  # type: ignore[attr-defined]
        if not count:
            break
        filled += count
    del buffer[filled:]
    return buffer


def _decode(command: list[str], size_hint: int) -> tuple[bytearray, int, str]:
    """Run an ffmpeg decode command: raw output, return code and error output."""
    with tempfile.TemporaryFile() as errors:
        try:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors
            )
        except OSError as error:
            raise _run_error("ffmpeg", error) from error
        with process:
            assert process.stdout is not None
            data = _read_all(process.stdout, size_hint)
        errors.seek(0)
        return data, process.returncode, errors.read().decode(errors="replace")


def _to_waveform(data: bytearray, channels: int, dtype: Any) -> np.ndarray:
    """Raw little-endian float32 bytes as an ``(n, channels)`` array of ``dtype``."""
    frames = len(data) // (4 * channels)
    waveform = np.frombuffer(data, dtype="<f4", count=frames * channels).reshape(-1, channels)
    if isinstance(dtype, bytes):
        dtype = dtype.decode()
    target = np.dtype(dtype)
    return waveform if waveform.dtype == target else waveform.astype(target)


def _temporary_path(path: str) -> str:
    """A hidden, unique name next to ``path`` with the same extension (ffmpeg picks the
    container from it)."""
    directory, name = os.path.split(path)
    stem, extension = os.path.splitext(name)
    return os.path.join(directory, f".{stem}.part-{secrets.token_hex(4)}{extension}")


def _encode_command(
    source: str, sample_rate: int, channels: int, codec: str | None, bitrate: str | None
) -> list[str]:
    """The ffmpeg command that encodes raw float32 from standard input into ``source``."""
    command = [*_FFMPEG, "-f", "f32le", "-ar", str(sample_rate), "-ac", str(channels)]
    command += ["-i", "pipe:", "-ar", str(sample_rate), "-strict", "-2"]
    if bitrate:
        command += ["-b:a", str(bitrate)]
    if codec:
        command += ["-codec:a", codec]
    return [*command, "-n", source]


def _as_frames(data: np.ndarray) -> np.ndarray:
    """``data`` as a C-contiguous little-endian float32 ``(n, channels)`` array (no copy when
    it already is one)."""
    data = np.asarray(data)
    if data.ndim == 1:
        data = data.reshape(-1, 1)
    if data.ndim != 2 or data.shape[1] == 0:
        raise SpleeterError(f"cannot save a waveform of shape {data.shape}: expected (n, channels)")
    return np.ascontiguousarray(data, dtype="<f4")


def _encode(command: list[str], frames: np.ndarray) -> tuple[int, str]:
    """Run an ffmpeg encode command fed with ``frames``: return code and error output."""
    with tempfile.TemporaryFile() as errors:
        try:
            process = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=errors)
        except OSError as error:
            raise _run_error("ffmpeg", error) from error
        assert process.stdin is not None
        try:
            process.stdin.write(memoryview(frames).cast("B"))
        except BrokenPipeError:
            pass  # ffmpeg exited early: its return code and stderr tell why
        finally:
            _close(process.stdin)
            process.wait()
        errors.seek(0)
        return process.returncode, errors.read().decode(errors="replace")


def _close(stream: IO[bytes]) -> None:
    """Close ``stream``, ignoring a reader that has already gone away."""
    with contextlib.suppress(BrokenPipeError):
        stream.close()


def _remove(path: str) -> None:
    """Delete ``path`` if it exists."""
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def _commit(temporary: str, path: str) -> None:
    """Move the encoded ``temporary`` over ``path``, keeping the permissions of a file it
    replaces."""
    with contextlib.suppress(OSError):  # no previous file: keep the default mode
        shutil.copymode(path, temporary)
    try:
        os.replace(temporary, path)
    except OSError as error:
        raise SpleeterError(f"{path}: cannot write file ({error.strerror or error})") from error


class FFMPEGProcessAudioAdapter(AudioAdapter):
    """An :class:`AudioAdapter` running the ``ffmpeg`` and ``ffprobe`` binaries.

    Stateless (and so picklable): the binaries are only checked to be on the PATH when created.
    """

    SUPPORTED_CODECS: dict[Codec, str] = {
        Codec.M4A: "aac",
        Codec.OGG: "libvorbis",
        Codec.WMA: "wmav2",
    }
    """ffmpeg encoder of the codecs whose name is not an encoder name; others pass through."""

    def __init__(self) -> None:
        """Check that ``ffmpeg`` and ``ffprobe`` are available.

        Raises:
            SpleeterError: a binary is not on the PATH.
        """
        _check_binaries()

    def load(
        self,
        path: PathLike,
        offset: float | None = None,
        duration: float | None = None,
        sample_rate: float | None = None,
        dtype: Any = np.float32,
    ) -> Signal:
        """Decode the first audio stream of ``path``, keeping its channel count.

        Args:
            path: the file (``str``, ``bytes`` or ``Path``; ffmpeg URLs are accepted too).
            offset: start, in seconds (default: the beginning).
            duration: length, in seconds (default: up to the end).
            sample_rate: output sample rate in Hz (default: the file's own rate).
            dtype: the waveform's data type (``np.float32``, ``"float32"`` or ``b"float32"``).

        Returns:
            ``(waveform, sample_rate)``: a writable ``(n_samples, n_channels)`` array and the
            sample rate as an ``int``.

        Raises:
            SpleeterError: the file is missing, not audio, empty or yields no samples (for
                instance an offset past its end).
        """
        path = _to_str(path)
        _check_window(offset, duration)
        _check_input(path)
        channels, native_rate, file_duration = _probe(path)
        rate = _sample_rate(sample_rate, native_rate)
        command = [*_FFMPEG, "-i", path, "-map", "0:a:0", "-f", "f32le"]
        command += ["-ar", str(rate), "-ac", str(channels)]
        if duration is not None and math.isfinite(duration):
            command += ["-t", _timestamp(duration)]
        if offset:
            command += ["-ss", _timestamp(offset)]
        size_hint = _expected_bytes(file_duration, offset, duration, rate, channels)
        data, returncode, stderr = _decode([*command, "pipe:"], size_hint)
        if returncode != 0:
            raise SpleeterError(f"{path}: cannot decode audio ({_error_line(stderr, path)})")
        if len(data) < 4 * channels:
            raise SpleeterError(self._no_samples_message(path, offset, file_duration))
        if stderr.strip():
            logger.warning(f"{path}: decoded with errors ({_error_line(stderr, path)})")
        return _to_waveform(data, channels, dtype), rate

    @staticmethod
    def _no_samples_message(path: str, offset: float | None, length: float | None) -> str:
        """Why decoding ``path`` gave no samples."""
        if offset and (length is None or offset >= length):
            known = f" ({length:g} s long)" if length is not None else ""
            return f"{path}: offset {offset:g} s is past the end of the audio{known}"
        return f"{path}: no audio samples could be decoded (truncated or corrupted file?)"

    def save(
        self,
        path: PathLike,
        data: np.ndarray,
        sample_rate: float,
        codec: Codec | str | None = None,
        bitrate: str | None = None,
    ) -> None:
        """Encode ``data`` into ``path``, replacing any existing file only once encoding worked.

        Args:
            path: the output file; its extension chooses the container.
            data: the waveform, ``(n_samples, n_channels)`` or ``(n_samples,)`` (mono).
            sample_rate: sample rate of ``data`` and of the file, in Hz.
            codec: a :class:`Codec` or any ffmpeg encoder name (default: ffmpeg's choice for the
                extension, 16-bit PCM for ``.wav``).
            bitrate: e.g. ``"128k"`` (ignored by lossless codecs).

        Raises:
            SpleeterError: the directory does not exist, or encoding failed (no file is left).
        """
        path = _to_str(path)
        directory = os.path.dirname(path) or os.curdir
        if not os.path.isdir(directory):
            raise SpleeterError(f"output directory does not exist: {directory}")
        frames = _as_frames(data)
        rate = _sample_rate(sample_rate)
        encoder = None if codec is None or codec == Codec.WAV else codec
        encoder = self.SUPPORTED_CODECS.get(encoder, encoder)  # type: ignore[arg-type]
        logger.debug(f"Writing file {path}")
        temporary = _temporary_path(path)
        command = _encode_command(temporary, rate, frames.shape[1], encoder, bitrate)
        try:
            returncode, stderr = _encode(command, frames)
            if returncode != 0:
                reason = _error_line(stderr, temporary).replace(temporary, path)
                raise SpleeterError(f"{path}: cannot write audio ({reason})")
            _commit(temporary, path)
        finally:
            _remove(temporary)
        logger.debug(f"File {path} written succesfully")


__all__ = ["FFMPEGProcessAudioAdapter"]
