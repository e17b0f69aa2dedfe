"""Spleeter: music source separation.

A maintained fork of Deezer's Spleeter that runs on the current Python stack. The package root
only defines the error type every module raises for a user-facing problem; the version comes
from the installed distribution's metadata (``spleeter --version``).
"""


class SpleeterError(Exception):
    """A problem the user can act on (bad input file, bad configuration, missing model...).

    The command line prints it as one ``ERROR:spleeter:`` line and exits with a non-zero code.
    """
