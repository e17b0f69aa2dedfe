"""``spleeter listen prepare | serve | report``: the MUSHRA test's commands (a typer sub-app)."""

import typer

from ..options import QuietOption, VerboseOption
from ..utils.logging import configure_logger, logger

listen: typer.Typer = typer.Typer(
    no_args_is_help=True,
    help="MUSHRA listening test (ITU-R BS.1534-3) of separations: prepare, serve, report.",
)


def _user_errors():
    from ..cli_errors import user_errors

    return user_errors()


@listen.command(no_args_is_help=True)
def prepare(
    output: str = typer.Option(..., "--output", "-o", help="New (or empty) test folder"),
    reference_dir: str = typer.Option(
        ..., "--reference-dir", help="References in MUSDB layout: <dir>/<track>/<stem>.wav"
    ),
    system: list[str] = typer.Option(
        ...,
        "--system",
        help="NAME=DIR of a system's separations (<dir>/<track>/<stem>.wav or a "
        "'spleeter evaluate' output folder); repeat for each system",
    ),
    stems: str = typer.Option("vocals", "--stems", help="Comma-separated stems to test"),
    duration: float = typer.Option(
        10.0, "--duration", help="Excerpt length in seconds (at most 12)"
    ),
    loudness: float = typer.Option(
        -23.0, "--loudness", help="BS.1770 loudness every signal is matched to (LUFS)"
    ),
    seed: int | None = typer.Option(None, "--seed", help="Seed of the condition ids"),
    verbose: bool = VerboseOption,
    quiet: bool = QuietOption,
) -> None:
    """Write a test folder: excerpts, loudness matching, hidden reference, 3.5/7 kHz anchors.

    The folder is self-contained: the audio of every trial and manifest.json.
    """
    configure_logger(verbose, quiet)
    with _user_errors():
        from .prepare import parse_systems, prepare_test

        names = [s.strip() for s in stems.split(",") if s.strip()]
        prepare_test(output, reference_dir, parse_systems(system), names, duration, loudness, seed)


@listen.command(no_args_is_help=True)
def serve(
    folder: str = typer.Argument(..., help="Test folder written by 'spleeter listen prepare'"),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to listen on (another one exposes the test)"
    ),
    port: int = typer.Option(8000, "--port", help="TCP port"),
    listeners: int = typer.Option(4, "--listeners", help="Number of invite links (at least)"),
    verbose: bool = VerboseOption,
    quiet: bool = QuietOption,
) -> None:
    """Serve the test page on 127.0.0.1 and print one invite link per listener.

    Ctrl-C stops the server; every saved grade stays in FOLDER/results.sqlite.
    """
    configure_logger(verbose, quiet)
    with _user_errors():
        from .server import serve as run_server

        run_server(folder, host=host, port=port, listeners=listeners)


@listen.command(no_args_is_help=True)
def report(
    folder: str = typer.Argument(..., help="Test folder with its results.sqlite"),
    output: str | None = typer.Option(
        None, "--output", "-o", help="Report folder (default FOLDER/report)"
    ),
    verbose: bool = VerboseOption,
    quiet: bool = QuietOption,
) -> None:
    """Post-screen listeners (BS.1534-3); statistics, box plots and the ratings."""
    configure_logger(verbose, quiet)
    with _user_errors():
        from .report import build_report

        result = build_report(folder, output)
        print(result.table, end="")
        for path in result.files:
            logger.info(f"written {path}")
