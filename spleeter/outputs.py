"""Proving an output directory writable before any work, by really writing there.

Permission bits and ``os.access`` say nothing about special filesystems (``/proc``, ``/sys``),
read-only mounts or root, so the check creates the missing directories and a hidden file, then
removes everything it made: a refused run leaves nothing behind, an accepted one starts clean.
"""

import contextlib
import os
import tempfile

from . import SpleeterError


def probe_output_directory(path: str) -> None:
    """Raise a one-line :class:`SpleeterError` naming ``path`` if files cannot be written into
    it; leaves the filesystem as it found it."""
    current = os.path.abspath(path)
    missing: list[str] = []
    while not os.path.exists(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    if not os.path.isdir(current):
        raise SpleeterError(
            f"Output directory {path} cannot be created: {current} is not a directory"
        )
    try:
        for directory in reversed(missing):
            os.mkdir(directory)
        descriptor, probe = tempfile.mkstemp(prefix=".spleeter-probe-", dir=path)
        os.close(descriptor)
        os.remove(probe)
    except OSError as error:
        raise SpleeterError(
            f"Output directory {path} cannot be created or written ({error.strerror or error})"
        ) from None
    finally:
        for directory in missing:  # deepest first
            with contextlib.suppress(OSError):
                os.rmdir(directory)
