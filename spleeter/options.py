"""Command-line options, with upstream Spleeter's names, spellings and defaults.

Options use underscores (``--output_path``, ``--filename_format``, ``--params_filename``), as
upstream's did; every upstream command line keeps working.
"""

import tempfile
from os.path import join

import typer

from .audio import Codec

DEFAULT_ADAPTER = "spleeter.audio.ffmpeg.FFMPEGProcessAudioAdapter"
DEFAULT_OUTPUT_PATH = join(tempfile.gettempdir(), "separated_audio")

AudioInputArgument: list[str] = typer.Argument(..., help="Audio files to separate")

AudioInputOption: str | None = typer.Option(
    None, "--inputs", "-i", help="(Removed) give the audio files as arguments instead"
)

AudioAdapterOption: str = typer.Option(
    DEFAULT_ADAPTER,
    "--adapter",
    "-a",
    help="Audio adapter class (dotted path) for reading and writing audio",
)

AudioOutputOption: str = typer.Option(
    DEFAULT_OUTPUT_PATH, "--output_path", "-o", help="Directory the separated files are written to"
)

AudioOffsetOption: float = typer.Option(
    0.0, "--offset", "-s", help="Start separating this many seconds into the file"
)

AudioDurationOption: float = typer.Option(
    600.0,
    "--duration",
    "-d",
    help="Separate at most this many seconds from the offset (upstream's default, 600 s)",
)

AudioCodecOption: Codec = typer.Option(
    Codec.WAV, "--codec", "-c", help="Codec (and file extension) of the separated files"
)

AudioBitrateOption: str = typer.Option(
    "128k", "--bitrate", "-b", help="Bitrate of the separated files (lossy codecs)"
)

FilenameFormatOption: str = typer.Option(
    "{filename}/{instrument}.{codec}",
    "--filename_format",
    "-f",
    help=(
        "Path of each separated file under the output directory; placeholders: {filename}, "
        "{foldername}, {instrument} and {codec}"
    ),
)

ModelParametersOption: str = typer.Option(
    "spleeter:2stems",
    "--params_filename",
    "-p",
    help="Model configuration: spleeter:2stems, 4stems, 5stems (also -16kHz) or a JSON file",
)

MWFOption: bool = typer.Option(
    False, "--mwf", help="Use a multichannel Wiener filter instead of ratio masks"
)

MUSDBDirectoryOption: str = typer.Option(..., "--mus_dir", help="Root of a MUSDB-layout dataset")

TrainingDataDirectoryOption: str = typer.Option(
    ..., "--data", "-d", help="Root folder of the training audio (CSV paths are relative to it)"
)

VerboseOption: bool = typer.Option(False, "--verbose", help="Show debug logs")

QuietOption: bool = typer.Option(
    False, "--quiet", "-q", help="Only print warnings and errors (no progress bar)"
)


def version_callback(value: bool) -> None:
    """Print ``Spleeter Version: <version>`` and exit (``spleeter --version``)."""
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            installed = version("spleeter")
        except PackageNotFoundError:
            installed = "unknown (not installed)"
        typer.echo(f"Spleeter Version: {installed}")
        raise typer.Exit()


VersionOption: bool = typer.Option(
    False, "--version", callback=version_callback, is_eager=True, help="Print the version and exit"
)
