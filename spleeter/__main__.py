"""The ``spleeter`` command line (``python -m spleeter`` does the same).

Commands import TensorFlow and the audio stack only when they run, so ``--help`` and
``--version`` answer at once.
"""

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer

from . import SpleeterError
from .audio import Codec
from .options import (
    AudioAdapterOption,
    AudioBitrateOption,
    AudioCodecOption,
    AudioDurationOption,
    AudioInputArgument,
    AudioInputOption,
    AudioOffsetOption,
    AudioOutputOption,
    FilenameFormatOption,
    ModelParametersOption,
    MWFOption,
    QuietOption,
    VerboseOption,
    VersionOption,
)
from .utils.logging import configure_logger, logger

EXIT_USER_ERROR = 1
EXIT_REMOVED_OPTION = 20

spleeter: typer.Typer = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    help="Music source separation: split a song into vocals, drums, bass, piano and other.",
)
"""The command-line application."""


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn a :class:`SpleeterError` into one ``ERROR:spleeter:`` line and exit code 1."""
    try:
        yield
    except SpleeterError as error:
        logger.error(str(error))
        raise typer.Exit(EXIT_USER_ERROR) from None


@spleeter.callback()
def default(version: bool = VersionOption) -> None:
    """Music source separation: split a song into vocals, drums, bass, piano and other."""


@spleeter.command(no_args_is_help=True)
def separate(
    deprecated_files: str | None = AudioInputOption,
    files: list[str] = AudioInputArgument,
    adapter: str = AudioAdapterOption,
    bitrate: str = AudioBitrateOption,
    codec: Codec = AudioCodecOption,
    duration: float = AudioDurationOption,
    offset: float = AudioOffsetOption,
    output_path: str = AudioOutputOption,
    filename_format: str = FilenameFormatOption,
    params_filename: str = ModelParametersOption,
    mwf: bool = MWFOption,
    verbose: bool = VerboseOption,
    quiet: bool = QuietOption,
) -> None:
    """Separate audio file(s) into one file per instrument."""
    configure_logger(verbose, quiet)
    if deprecated_files is not None:
        logger.error(
            "-i option is not supported anymore, audio files must be supplied "
            "using input argument instead (see spleeter separate --help)"
        )
        raise typer.Exit(EXIT_REMOVED_OPTION)
    with user_errors():
        if offset < 0:
            raise SpleeterError(f"--offset must be >= 0 (got {offset})")
        if duration <= 0:
            raise SpleeterError(f"--duration must be > 0 (got {duration})")
        from .audio.adapter import AudioAdapter
        from .separator import Separator

        audio_adapter = AudioAdapter.get(adapter)
        separator = Separator(params_filename, MWF=mwf)
        check_writable_directory(output_path)
        failures = 0
        for filename in _progress(files, quiet):
            paths = separator.output_paths(filename, output_path, filename_format, codec)
            try:
                waveform, _ = audio_adapter.load(
                    filename, offset=offset, duration=duration, sample_rate=separator.sample_rate
                )
            except SpleeterError as error:
                logger.error(str(error))
                failures += 1
                continue
            sources = separator.separate(waveform, filename)
            separator.save_to_file(
                sources,
                filename,
                output_path,
                filename_format,
                codec,
                audio_adapter,
                bitrate,
                synchronous=False,
            )
            del paths
        try:
            separator.join()
        except SpleeterError as error:
            logger.error(str(error))
            failures += 1
        if failures:
            raise typer.Exit(EXIT_USER_ERROR)


def check_writable_directory(path: str) -> None:
    """Fail early, naming ``path``, if output cannot be written there (before any work)."""
    current = os.path.abspath(path)
    while not os.path.exists(current):
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    if not os.path.isdir(current):
        raise SpleeterError(
            f"Output directory {path} cannot be created: {current} is not a directory"
        )
    if not os.access(current, os.W_OK | os.X_OK):
        raise SpleeterError(f"Output directory {path} is not writable (no permission on {current})")


def _progress(files: list[str], quiet: bool) -> Iterator[str]:
    """Iterate over ``files`` with a progress bar on a terminal (several files, not quiet)."""
    if quiet or len(files) < 2 or not sys.stderr.isatty():
        yield from files
        return
    from tqdm import tqdm

    yield from tqdm(files, desc="Separating", unit="file", file=sys.stderr)


def entrypoint() -> None:
    """Console-script entry point."""
    try:
        spleeter()
    except SpleeterError as error:
        logger.error(str(error))
        sys.exit(EXIT_USER_ERROR)


if __name__ == "__main__":
    entrypoint()
