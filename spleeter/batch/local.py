"""Separating many files with one loaded model: what ``spleeter separate`` does with its inputs."""

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .. import SpleeterError
from ..audio import Codec
from ..audio.adapter import AudioAdapter
from ..audio.streams import AudioReader
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
) -> int:
    """Separate every file into ``output_path``; return how many failed.

    A file that cannot be read is reported (one error line) and the others still run; a
    problem with the model stops everything (it would fail for every file). Two inputs that
    would write the same output files are caught before the second one overwrites the first.
    """
    failures = 0
    claimed: dict[str, str] = {}
    for filename in files:
        paths = separator.output_paths(filename, output_path, filename_format, codec)
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
                        progress=lambda samples: advance(samples / separator.sample_rate),
                        reopen=open_input,
                    )
            except SpleeterError as error:
                logger.error(str(error))
                failures += 1
    return failures


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
    """A per-file progress bar in seconds of audio, on a terminal only."""
    if not enabled or not sys.stderr.isatty():
        yield lambda _: None
        return
    from tqdm import tqdm

    label = os.path.basename(filename)
    total = round(seconds, 1) if seconds else None
    with tqdm(total=total, desc=label, unit="s", file=sys.stderr, leave=False) as bar:
        yield lambda done: bar.update(round(done, 3))
