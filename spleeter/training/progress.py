"""Training progress: a bar on a terminal, periodic log lines otherwise.

The bar (tqdm, on standard error) shows the step, the loss and the steps per second; log lines
are printed above it while it is shown. When the output is not a terminal (or with
``--quiet``) there is no bar: an INFO line every ``log_every`` steps gives the same figures.
"""

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..utils.logging import formatter, logger

LOG_EVERY = 100
"""Steps between progress lines when there is no bar (10 with ``--verbose``)."""


class _BarHandler(logging.Handler):
    """Writes log records above the progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        stream = sys.stderr if record.levelno >= logging.WARNING else sys.stdout
        tqdm.write(self.format(record), file=stream)


class Progress:
    """Reports training steps from ``start`` to ``total``."""

    def __init__(
        self,
        start: int,
        total: int,
        quiet: bool = False,
        verbose: bool = False,
        description: str = "Training",
    ) -> None:
        self.start = start
        self.total = total
        self.log_every = 10 if verbose else LOG_EVERY
        self._bar: Any = None
        self._quiet = quiet
        self._last_step = start
        self._last_time = time.monotonic()
        self._started = self._last_time
        if not quiet and sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(
                total=total,
                initial=start,
                desc=description,
                unit="step",
                file=sys.stderr,
                dynamic_ncols=True,
            )

    @contextmanager
    def logging_above(self) -> Iterator[None]:
        """Route the ``spleeter`` logger's lines above the bar while it is shown."""
        if self._bar is None:
            yield
            return
        handlers = list(logger.handlers)
        bar_handler = _BarHandler()
        bar_handler.setFormatter(formatter)
        logger.handlers = [bar_handler]
        try:
            yield
        finally:
            logger.handlers = handlers

    def update(self, step: int, loss: float) -> None:
        """Step ``step`` is done with training loss ``loss``."""
        if self._bar is not None:
            self._bar.update(step - self._bar.n)
            self._bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
            return
        if step % self.log_every == 0 or step == self.total:
            now = time.monotonic()
            rate = (step - self._last_step) / max(now - self._last_time, 1e-9)
            self._last_step, self._last_time = step, now
            logger.info(f"step {step}/{self.total}: loss {loss:.6g} ({rate:.3g} steps/s)")

    def rate(self, step: int) -> float:
        """Average steps per second since the start of this run."""
        return (step - self.start) / max(time.monotonic() - self._started, 1e-9)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
