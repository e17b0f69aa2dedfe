"""Separating many files with one loaded model: what ``spleeter separate`` does with its inputs."""

import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .. import SpleeterError
from ..audio import Codec
from ..audio.adapter import AudioAdapter
from ..audio.encoding import OutputFormat
from ..audio.streams import AudioReader
from ..separation.selection import StemSelection
from ..separator import Separator
from ..utils.logging import logger


def separate_files(
    separator: Separator,
    audio_adapter: AudioAdapter,
    files: list[str],
    output_path: str,
    filename_format: str,
    codec: Codec,
    bitrate: str,
    offset: float = 0.0,
    duration: float | None = None,
    skip_existing: bool = False,
    show_progress: bool = True,
    selection: StemSelection | None = None,
    output_format: OutputFormat | None = None,
) -> int:
    """Separate every file into ``output_path``; return how many failed.

    A file that cannot be read is reported (one error line) and the others still run; a
    problem with the model stops everything (it would fail for every file). Two inputs that
    would write the same output files are caught before the second one overwrites the first.
    A summary line ends the run (files, stems, audio duration, wall time, real-time factor).
    """
    selection = selection or StemSelection()
    output_format = output_format or OutputFormat()
    output_format.check(codec)
    instruments = selection.outputs(separator.instruments) if separator.instruments else None
    failures = 0
    summary = _Summary()
    claimed: dict[str, str] = {}
    for filename in files:
        paths = separator.output_paths(
            filename, output_path, filename_format, codec, instruments=instruments
        )
        per_track = not separator.instruments  # sources decided per track (clustering)
        taken = [path for path in paths.values() if path in claimed]
        if taken:
            logger.error(
                f"{filename}: its output {taken[0]} is also the output of {claimed[taken[0]]}; "
                "use {foldername} in --filename_format to tell them apart"
            )
            failures += 1
            continue
        claimed.update(dict.fromkeys(paths.values(), filename))
        if skip_existing and all(os.path.isfile(path) for path in paths.values()):
            logger.info(f"Skipping {filename}: its separated files exist already")
            continue

        def open_input(name: str = filename) -> AudioReader:
            return audio_adapter.open_reader(
                name, offset=offset, duration=duration, sample_rate=separator.sample_rate
            )

        try:
            reader = open_input()
        except SpleeterError as error:
            logger.error(str(error))
            failures += 1
            continue
        with reader:
            separator.load()  # a model problem is not the file's: let it stop the run
            total = reader.duration
            written = [0]

            def advance_by(
                samples: int, advance: Callable[[float], None], written: list[int] = written
            ) -> None:
                written[0] += samples
                advance(samples / separator.sample_rate)

            try:
                with _progress_bar(filename, total, show_progress) as advance:
                    separator.separate_reader(
                        reader,
                        _track_paths(separator, filename, output_path, filename_format, codec)
                        if per_track
                        else paths,
                        codec,
                        audio_adapter,
                        bitrate,
                        progress=lambda samples, advance=advance: advance_by(samples, advance),
                        reopen=open_input,
                        stems=list(selection.stems) if selection.stems else None,
                        two_stems=selection.two_stems,
                        output_format=output_format,
                    )
                summary.add(len(paths), written[0] / separator.sample_rate)
            except SpleeterError as error:
                logger.error(str(error))
                failures += 1
    summary.report(failures)
    return failures


class _Summary:
    """Counts of a run, for its last line."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.files = 0
        self.stems = 0
        self.audio_seconds = 0.0

    def add(self, stems: int, audio_seconds: float) -> None:
        self.files += 1
        self.stems += stems
        self.audio_seconds += audio_seconds

    def report(self, failures: int) -> None:
        if not self.files and not failures:
            return
        wall = time.perf_counter() - self.start
        failed = f", {failures} failed" if failures else ""
        plural = "" if self.files == 1 else "s"
        line = (
            f"Separated {self.files} file{plural}{failed}: {self.stems} stems, "
            f"{self.audio_seconds:.1f} s of audio in {wall:.1f} s"
        )
        if self.audio_seconds > 0 and wall > 0:
            factor = wall / self.audio_seconds
            line += f", real-time factor {factor:.2f} (wall time / audio duration)"
        logger.info(line)


class _BarSafeHandler(logging.Handler):
    """Writes log records through another handler with the progress bars cleared first and
    redrawn after, so that a line never glues itself to a bar."""

    def __init__(self, inner: logging.Handler) -> None:
        super().__init__(inner.level)
        self.inner = inner

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        with tqdm.external_write_mode(file=sys.stderr):
            self.inner.handle(record)


@contextmanager
def _bar_safe_logging() -> Iterator[None]:
    handlers = list(logger.handlers)
    wrapped = [_BarSafeHandler(handler) for handler in handlers]
    for handler, wrapper in zip(handlers, wrapped, strict=True):
        logger.removeHandler(handler)
        logger.addHandler(wrapper)
    try:
        yield
    finally:
        for handler, wrapper in zip(handlers, wrapped, strict=True):
            logger.removeHandler(wrapper)
            logger.addHandler(handler)


BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} s [{elapsed}<{remaining}]"
"""Seconds of audio with one decimal; never past 100 % (the count is clamped to the total)."""

BAR_FORMAT_UNKNOWN = "{desc}: {n:.1f} s [{elapsed}]"
"""When the input's length is not known in advance."""


def _track_paths(
    separator: Separator, filename: str, output_path: str, filename_format: str, codec: Codec
) -> Callable[[list[str]], dict[str, str]]:
    """The output paths as a function of the sources a track turns out to have."""

    def paths(sources: list[str]) -> dict[str, str]:
        return separator.output_paths(
            filename, output_path, filename_format, codec, instruments=sources
        )

    return paths


@contextmanager
def _progress_bar(
    filename: str, seconds: float | None, enabled: bool
) -> Iterator[Callable[[float], None]]:
    """A per-file progress bar in seconds of audio, on a terminal only; cleared when done, and
    cleared before every log line while it shows."""
    if not enabled or not sys.stderr.isatty():
        yield lambda _: None
        return
    from tqdm import tqdm

    label = os.path.basename(filename)
    total = round(seconds, 1) if seconds else None
    done = [0.0]
    bar_format = BAR_FORMAT if total else BAR_FORMAT_UNKNOWN
    with (
        tqdm(total=total, desc=label, file=sys.stderr, leave=False, bar_format=bar_format) as bar,
        _bar_safe_logging(),
    ):

        def advance(seconds_done: float) -> None:
            done[0] += seconds_done
            shown = round(min(done[0], total) if total else done[0], 1)
            if shown > bar.n:
                bar.update(shown - bar.n)
                bar.n = shown  # not accumulated: no float noise, never past the total
                bar.refresh()

        yield advance
