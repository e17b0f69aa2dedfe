"""Termination signals end a run the way Ctrl-C does.

Ctrl-C raises ``KeyboardInterrupt``, which unwinds every ``finally`` and context manager: the
staged stems are removed, the trainer saves its checkpoint. SIGTERM and SIGHUP would otherwise
kill the process on the spot and leave hidden partial files behind.
"""

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType

TRANSLATED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""The signals that end a run cleanly."""

_received: list[int] = []
"""The signal that interrupted this process, if any."""


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    if not _received:
        _received.append(signum)
    raise KeyboardInterrupt


@contextlib.contextmanager
def translate_signals() -> Iterator[None]:
    """Within the block, each of :data:`TRANSLATED` raises ``KeyboardInterrupt``.

    A signal the parent set to be ignored (``nohup``, a background job's SIGINT) stays ignored.
    """
    previous = {
        number: signal.signal(number, _interrupt)
        for number in TRANSLATED
        if signal.getsignal(number) is not signal.SIG_IGN
    }
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def exit_status(code: object) -> object:
    """``code``, or 128 + the signal number when a signal ended the run (the shell's
    convention, which schedulers rely on to tell a kill from a failure)."""
    return 128 + _received[0] if _received else code
