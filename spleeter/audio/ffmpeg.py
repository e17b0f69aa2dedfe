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
from .integrity import check_complete, check_finite, check_regular_file, declared_wav_seconds
from .streams import AudioReader, AudioWriter, remove_quietly

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


def _url(path: str) -> str:
    """``path`` for an ffmpeg command line: ``file:`` before a local path, so that a name
    starting with ``-`` is never read as an option (nor ``a:b`` as a protocol)."""
    return path if _is_url(path) else f"file:{path}"


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
    check_regular_file(path)
    if os.path.getsize(path) == 0:
        raise SpleeterError(f"{path}: empty file")


_LEVEL = re.compile(r"\[(panic|fatal|error|warning)\] ")
"""The level tag ``-v level+warning`` puts in each line."""

_ESTIMATED = "Estimating duration from bitrate"
"""ffprobe's warning that the duration is a guess (VBR mp3 without a Xing header...)."""


def _errors_only(stderr: str) -> tuple[str, bool]:
    """The error lines of a ``level+warning`` log, and whether the duration was estimated."""
    errors = [_LEVEL.sub("", line, 1) for line in stderr.splitlines() if "[warning] " not in line]
    return "\n".join(errors), _ESTIMATED in stderr


def probe_file(path: str) -> tuple[int, int, float | None]:
    """Channel count and sample rate of the first audio stream, and the file duration if known."""
    return _probe_stream(path)[:3]


def _probe_stream(path: str) -> tuple[int, int, float | None, bool]:
    """Channel count and sample rate of the first audio stream, the file duration if known, and
    whether ffprobe only estimated it from the bitrate (then it cannot prove a truncation)."""
    command = ["ffprobe", "-hide_banner", "-v", "level+warning", "-select_streams", "a:0"]
    command += ["-of", "json"]
    command += ["-show_entries", "stream=channels,sample_rate:format=duration", _url(path)]
    try:
        result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    except OSError as error:
        raise _run_error("ffprobe", error) from error
    stderr, estimated = _errors_only(result.stderr.decode(errors="replace"))
    if result.returncode != 0:
        reason = _error_line(stderr, _url(path), path)
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
    return channels, rate, duration, estimated


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


def _expected_seconds(
    file_duration: float | None, offset: float | None, duration: float | None
) -> float | None:
    """How many seconds a decode of ``file_duration`` from ``offset`` for ``duration`` gives."""
    seconds = max(file_duration - (offset or 0.0), 0.0) if file_duration is not None else None
    if duration is not None and math.isfinite(duration):
        seconds = duration if seconds is None else min(seconds, duration)
    return seconds


def _expected_bytes(seconds: float | None, rate: int, channels: int) -> int:
    """A slight over-estimate of the decoded size in bytes, to size the read buffer once."""
    if seconds is None:
        return _READ_CHUNK
    frames = (seconds * 1.01 + 0.5) * rate
    return max(int(frames) * channels * 4, 1 << 16)


def _read_into(stream: IO[bytes], buffer: bytearray) -> int:
    """Fill ``buffer`` from ``stream``; fewer bytes only at the end of the stream."""
    filled = 0
    with memoryview(buffer) as view:
        while filled < len(buffer):
            count = stream.readinto(view[filled:])  # type: ignore[attr-defined]
            if not count:
                break
            filled += count
    return filled


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


def _to_waveform(data: bytearray, channels: int, dtype: Any) -> np.ndarray:
    """Raw little-endian float32 bytes as an ``(n, channels)`` array of ``dtype``."""
    frames = len(data) // (4 * channels)
    waveform = np.frombuffer(data, dtype="<f4", count=frames * channels).reshape(-1, channels)
    if isinstance(dtype, bytes):
        dtype = dtype.decode()
    target = np.dtype(dtype)
    return waveform if waveform.dtype == target else waveform.astype(target)


def _encode_command(
    source: str,
    sample_rate: int,
    channels: int,
    codec: str | None,
    bitrate: str | None,
    output_sample_rate: int | None = None,
    extra: tuple[str, ...] = (),
) -> list[str]:
    """The ffmpeg command that encodes raw float32 from standard input into ``source``
    (resampled to ``output_sample_rate`` when given; ``extra``: more output options)."""
    command = [*_FFMPEG, "-f", "f32le", "-ar", str(sample_rate), "-ac", str(channels)]
    command += ["-i", "pipe:", "-ar", str(output_sample_rate or sample_rate), "-strict", "-2"]
    if bitrate:
        command += ["-b:a", str(bitrate)]
    if codec:
        command += ["-codec:a", codec]
    return [*command, *extra, "-n", _url(source)]


_SAMPLE_FORMATS: dict[tuple[str, str], tuple[str | None, tuple[str, ...]]] = {
    ("wav", "int16"): (None, ()),
    ("wav", "int24"): ("pcm_s24le", ()),
    ("wav", "float32"): ("pcm_f32le", ()),
    ("flac", "int16"): ("flac", ("-sample_fmt", "s16")),
    ("flac", "int24"): ("flac", ("-sample_fmt", "s32", "-bits_per_raw_sample", "24")),
}
"""The ffmpeg encoder and options of each codec's sample formats (``--int24``, ``--float32``)."""


def _sample_format_encoder(
    codec: Codec | str | None, sample_format: str
) -> tuple[str | None, tuple[str, ...]]:
    key = (str(codec or Codec.WAV), str(sample_format))
    if key not in _SAMPLE_FORMATS:
        raise SpleeterError(f"codec {key[0]} cannot store {key[1]} samples")
    return _SAMPLE_FORMATS[key]


def _as_frames(data: np.ndarray) -> np.ndarray:
    """``data`` as a C-contiguous little-endian float32 ``(n, channels)`` array (no copy when
    it already is one)."""
    data = np.asarray(data)
    if data.ndim == 1:
        data = data.reshape(-1, 1)
    if data.ndim != 2 or data.shape[1] == 0:
        raise SpleeterError(f"cannot save a waveform of shape {data.shape}: expected (n, channels)")
    return np.ascontiguousarray(data, dtype="<f4")


def _close(stream: IO[bytes]) -> None:
    """Close ``stream``, ignoring a reader that has already gone away."""
    with contextlib.suppress(BrokenPipeError):
        stream.close()


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
        with FFMPEGReader(path, offset, duration, sample_rate) as reader:
            data = reader.read_all()
        return _to_waveform(data, reader.channels, dtype), reader.sample_rate

    def open_reader(
        self,
        path: PathLike,
        offset: float | None = None,
        duration: float | None = None,
        sample_rate: float | None = None,
    ) -> "FFMPEGReader":
        """Decode progressively: the samples ``load`` would return, in chunks."""
        return FFMPEGReader(path, offset, duration, sample_rate)

    def open_writer(
        self,
        path: PathLike,
        sample_rate: float,
        channels: int,
        codec: Codec | str | None = None,
        bitrate: str | None = None,
        sample_format: str | None = None,
        output_sample_rate: int | None = None,
    ) -> "FFMPEGWriter":
        """Encode progressively into a temporary file, published by ``commit()``.

        ``sample_format`` (``int16``, ``int24``, ``float32``; WAV and FLAC) and
        ``output_sample_rate`` (resampled by ffmpeg) default to the codec's and the input's."""
        encoder, extra = self._encoder(codec), ()
        if sample_format is not None:
            encoder, extra = _sample_format_encoder(codec, sample_format)
        return FFMPEGWriter(
            path, sample_rate, channels, encoder, bitrate, output_sample_rate, extra
        )

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
        frames = _as_frames(data)
        writer = self.open_writer(path, sample_rate, frames.shape[1], codec, bitrate)
        try:
            writer.write(frames)
            writer.finish()
            writer.commit()
        finally:
            writer.abort()
        logger.debug(f"File {writer.path} written succesfully")

    def _encoder(self, codec: Codec | str | None) -> str | None:
        """The ffmpeg encoder for ``codec`` (None: ffmpeg's default for the extension)."""
        if codec is None or codec == Codec.WAV:
            return None
        return self.SUPPORTED_CODECS.get(codec, str(codec))  # type: ignore[call-overload]


class FFMPEGReader(AudioReader):
    """Decodes one file with an ``ffmpeg`` process, handing out float32 samples in chunks."""

    def __init__(
        self,
        path: PathLike,
        offset: float | None = None,
        duration: float | None = None,
        sample_rate: float | None = None,
    ) -> None:
        self.path = _to_str(path)
        self._offset = offset
        _check_window(offset, duration)
        _check_input(self.path)
        self.channels, native_rate, self._file_duration, estimated = _probe_stream(self.path)
        self.sample_rate = _sample_rate(sample_rate, native_rate)
        self.duration = _expected_seconds(self._file_duration, offset, duration)
        # A WAV cut short: ffprobe reports what is there, the header what should be.
        header = None if _is_url(self.path) else declared_wav_seconds(self.path)
        declared = None if estimated else self._file_duration
        declared = max(header, declared or 0.0) if header else declared
        self._declared = _expected_seconds(declared, offset, duration)
        command = [*_FFMPEG, "-i", _url(self.path), "-map", "0:a:0", "-f", "f32le"]
        command += ["-ar", str(self.sample_rate), "-ac", str(self.channels)]
        if duration is not None and math.isfinite(duration):
            command += ["-t", _timestamp(duration)]
        if offset:
            command += ["-ss", _timestamp(offset)]
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the process)
        try:
            self._process = subprocess.Popen(
                [*command, "pipe:"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=self._errors,
            )
        except OSError as error:
            self._errors.close()
            raise _run_error("ffmpeg", error) from error
        self._samples = 0
        self._done = False

    def read(self, n_samples: int) -> np.ndarray:
        if self._done:
            return np.zeros((0, self.channels), np.float32)
        frame_bytes = 4 * self.channels
        buffer = bytearray(n_samples * frame_bytes)
        filled = _read_into(self._process.stdout, buffer)  # type: ignore[arg-type]
        del buffer[filled - filled % frame_bytes :]
        chunk = _to_waveform(buffer, self.channels, np.float32)
        check_finite(self.path, chunk, self._samples, self.sample_rate, self._offset or 0.0)
        self._samples += len(chunk)
        if filled < n_samples * frame_bytes:
            self._finish()
        return chunk

    def read_all(self) -> bytearray:
        """Everything left, as raw float32 bytes (one preallocated buffer, no copies)."""
        size_hint = _expected_bytes(self.duration, self.sample_rate, self.channels)
        data = _read_all(self._process.stdout, size_hint)  # type: ignore[arg-type]
        del data[len(data) - len(data) % (4 * self.channels) :]
        waveform = _to_waveform(data, self.channels, np.float32)
        check_finite(self.path, waveform, self._samples, self.sample_rate, self._offset or 0.0)
        self._samples += len(waveform)
        self._finish()
        return data

    def _finish(self) -> None:
        """Reap ffmpeg and turn a failure, or an input without samples, into an error."""
        self._done = True
        returncode = self._process.wait()
        self._errors.seek(0)
        stderr = self._errors.read().decode(errors="replace")
        reason = _error_line(stderr, _url(self.path), self.path)
        if returncode != 0:
            raise SpleeterError(f"{self.path}: cannot decode audio ({reason})")
        if self._samples == 0:
            raise SpleeterError(self._no_samples_message())
        check_complete(self.path, self._declared, self._samples / self.sample_rate)
        if stderr.strip():
            logger.warning(f"{self.path}: decoded with errors ({reason})")

    def _no_samples_message(self) -> str:
        """Why decoding gave no samples."""
        offset, length = self._offset, self._file_duration
        if offset and (length is None or offset >= length):
            known = f" ({length:g} s long)" if length is not None else ""
            return f"{self.path}: offset {offset:g} s is past the end of the audio{known}"
        return f"{self.path}: no audio samples could be decoded (truncated or corrupted file?)"

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._errors.close()


class FFMPEGWriter(AudioWriter):
    """Encodes one file with an ``ffmpeg`` process fed in chunks, into a temporary file."""

    def __init__(
        self,
        path: PathLike,
        sample_rate: float,
        channels: int,
        encoder: str | None = None,
        bitrate: str | None = None,
        output_sample_rate: int | None = None,
        extra: tuple[str, ...] = (),
    ) -> None:
        super().__init__(_to_str(path))
        directory = os.path.dirname(self.path) or os.curdir
        if not os.path.isdir(directory):
            raise SpleeterError(f"output directory does not exist: {directory}")
        if channels <= 0:
            raise SpleeterError(f"cannot save {channels} audio channels into {self.path}")
        self.channels = channels
        rate = _sample_rate(sample_rate)
        logger.debug(f"Writing file {self.path}")
        command = _encode_command(
            self.temporary, rate, channels, encoder, bitrate, output_sample_rate, extra
        )
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the process)
        try:
            self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=self._errors)
        except OSError as error:
            self._errors.close()
            raise _run_error("ffmpeg", error) from error

    def write(self, data: np.ndarray) -> None:
        frames = _as_frames(data)
        if frames.shape[1] != self.channels:
            raise SpleeterError(
                f"{self.path}: got {frames.shape[1]} channels, expected {self.channels}"
            )
        with contextlib.suppress(BrokenPipeError):  # ffmpeg exited early: finish() says why
            self._process.stdin.write(memoryview(frames).cast("B"))  # type: ignore[union-attr]

    def finish(self) -> None:
        _close(self._process.stdin)  # type: ignore[arg-type]
        returncode = self._process.wait()
        self._errors.seek(0)
        stderr = self._errors.read().decode(errors="replace")
        self._errors.close()
        if returncode != 0:
            remove_quietly(self.temporary)
            reason = _error_line(stderr, _url(self.temporary), self.temporary)
            reason = reason.replace(self.temporary, self.path)
            raise SpleeterError(f"{self.path}: cannot write audio ({reason})")

    def abort(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        with contextlib.suppress(BrokenPipeError, ValueError):
            self._process.stdin.close()  # type: ignore[union-attr]
        if not self._errors.closed:
            self._errors.close()
        remove_quietly(self.temporary)


__all__ = ["FFMPEGProcessAudioAdapter"]
