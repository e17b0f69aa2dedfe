"""How the command line reports a problem the user can fix: ``ERROR:spleeter:`` lines on
standard error and exit status 1 (shared by every command, sub-apps such as ``listen``
included)."""

from collections.abc import Iterator
from contextlib import contextmanager

import typer

from . import SpleeterError
from .utils.logging import logger

EXIT_USER_ERROR = 1


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn a :class:`SpleeterError` into ``ERROR:spleeter:`` lines (one per problem) and exit
    code 1."""
    try:
        yield
    except SpleeterError as error:
        log_error(error)
        raise typer.Exit(EXIT_USER_ERROR) from None


def log_error(error: SpleeterError) -> None:
    """Log an error: one ``ERROR:spleeter:`` record, or one per line of an error that has
    ``lines`` (a configuration's problems, each on its own line)."""
    for line in getattr(error, "lines", None) or [str(error)]:
        logger.error(line)
