"""Checks that keep damaged audio from being separated as if it were whole.

ffmpeg decodes what it can and exits 0 for a file cut short, and passes NaN and infinity
through from float files; these checks turn both into one clear error naming the file.
"""

import os
import stat
import struct

import numpy as np

from .. import SpleeterError

TRUNCATION_TOLERANCE_S = 0.1
"""Decoded audio may fall short of the declared length by this much (codec priming/padding)."""

TRUNCATION_TOLERANCE_RATIO = 0.01
"""... or by this fraction of the declared length (bitrate-based estimates)."""


def check_regular_file(path: str) -> None:
    """Raise a clear error for a FIFO, device or socket given as an audio file."""
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        raise SpleeterError(f"{path}: cannot read file ({error.strerror or error})") from error
    kinds = {
        stat.S_ISFIFO: "a named pipe (FIFO)",
        stat.S_ISCHR: "a character device",
        stat.S_ISBLK: "a block device",
        stat.S_ISSOCK: "a socket",
    }
    for test, kind in kinds.items():
        if test(mode):
            raise SpleeterError(f"{path}: is {kind}, not a regular audio file")


def declared_wav_seconds(path: str) -> float | None:
    """The length a RIFF/WAVE header declares for its data chunk, or None when not a WAV file
    with a definite size (ffprobe reports the length actually present instead)."""
    try:
        with open(path, "rb") as file:
            head = file.read(1 << 16)
    except OSError:
        return None
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    position, block_align, rate = 12, 0, 0
    while position + 8 <= len(head):
        chunk, size = head[position : position + 4], struct.unpack_from("<I", head, position + 4)[0]
        if chunk == b"fmt " and position + 20 <= len(head):
            rate = struct.unpack_from("<I", head, position + 12)[0]
            block_align = struct.unpack_from("<H", head, position + 20)[0]
        elif chunk == b"data":
            if not (block_align and rate) or size in (0, 0xFFFFFFFF):
                return None  # streamed WAV: the size was never filled in
            return size / block_align / rate
        position += 8 + size + (size & 1)
    return None


def check_complete(path: str, declared: float | None, decoded: float) -> None:
    """Raise if ``decoded`` seconds fall clearly short of the ``declared`` length."""
    if declared is None:
        return
    tolerance = max(TRUNCATION_TOLERANCE_S, TRUNCATION_TOLERANCE_RATIO * declared)
    if decoded < declared - tolerance:
        raise SpleeterError(
            f"{path}: truncated or damaged file: it declares {declared:.3f} s of audio but only "
            f"{decoded:.3f} s could be decoded"
        )


def check_finite(path: str, chunk: np.ndarray, first_sample: int, rate: int, start: float) -> None:
    """Raise, naming the time of the first bad sample, if ``chunk`` holds NaN or infinity.

    ``first_sample`` is the index of ``chunk``'s first frame in the decode, ``start`` the time
    (seconds) the decode began at.
    """
    finite = np.isfinite(chunk)
    if finite.all():
        return
    frame = int(np.argmin(finite.all(axis=1)))
    seconds = start + (first_sample + frame) / rate
    value = chunk[frame][~finite[frame]][0]
    raise SpleeterError(
        f"{path}: non-finite sample ({value}) at {seconds:.6f} s: the audio is damaged"
    )
