"""The ``spleeter`` logger, printing ``LEVEL:spleeter:message`` lines as upstream does.

Informational lines go to standard output (as upstream); warnings and errors go to standard
error, so that piping the output of a command does not swallow its errors.
"""

import logging
import os
import warnings

import typer

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


class TyperLoggerHandler(logging.Handler):
    """A logging handler that writes through ``typer.echo``."""

    def emit(self, record: logging.LogRecord) -> None:
        typer.echo(self.format(record), err=record.levelno >= logging.WARNING)


formatter = logging.Formatter("%(levelname)s:%(name)s:%(message)s")
handler = TyperLoggerHandler()
handler.setFormatter(formatter)
logger: logging.Logger = logging.getLogger("spleeter")
logger.addHandler(handler)
logger.setLevel(logging.INFO)
logger.propagate = False


def configure_logger(verbose: bool, quiet: bool = False) -> None:
    """Set the verbosity of the ``spleeter`` logger (and of TensorFlow's, when loaded).

    ``verbose`` shows debug lines; ``quiet`` shows only warnings and errors.
    """
    if verbose:
        logger.setLevel(logging.DEBUG)
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "1"
    else:
        logger.setLevel(logging.WARNING if quiet else logging.INFO)
        warnings.filterwarnings("ignore")
    tf_logger = logging.getLogger("tensorflow")
    tf_logger.setLevel(logging.INFO if verbose else logging.ERROR)
