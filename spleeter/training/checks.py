"""Dataset check run before training: every problem of every CSV row, in one error.

Each audio file is probed (header only: no decoding), so a dataset of hundreds of songs is
checked in seconds. A row is unusable when a file is missing or unreadable, its stems disagree
on sample rate, channel count or length, its channel count is not the configuration's
``n_channels``, its ``duration`` is not a number, or it is too short for a training example
(``T`` frames) in one of its chunks. Files at another sample rate than the configuration's are
fine (ffmpeg resamples them while loading); the check says how many there are.
"""

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from .. import SpleeterError
from ..dataset import (
    DEFAULT_CHUNK_DURATION,
    DEFAULT_N_CHUNKS_PER_SONG,
    DURATION_COLUMN,
    VALIDATION_CHUNK_DURATION,
    min_example_samples,
    parse_duration,
    path_column,
    read_dataset_rows,
    segment_starts,
    stem_names,
)
from ..utils.logging import logger

LENGTH_TOLERANCE = 0.1
"""Seconds by which the stems of a row may differ in length (encoder padding)."""

MAX_PROBE_WORKERS = 8
"""Files probed at a time."""


class DatasetCheckError(SpleeterError):
    """Rows of the dataset cannot be used for training; the message lists each of them."""


@dataclass(frozen=True)
class AudioInfo:
    """What a probe tells about an audio file."""

    channels: int
    sample_rate: int
    duration: float


Prober = Callable[[str], AudioInfo]
"""Reads an audio file's header; raises :class:`SpleeterError` when it cannot."""


def probe(path: str) -> AudioInfo:
    """Channels, sample rate and duration of ``path`` (libsndfile, else ffprobe).

    Raises:
        SpleeterError: the file is missing or not readable audio.
    """
    if not os.path.isfile(path):
        raise SpleeterError("file not found" if not os.path.exists(path) else "not a file")
    try:
        import soundfile

        info = soundfile.info(path)
        if info.samplerate > 0 and info.frames > 0:
            return AudioInfo(info.channels, info.samplerate, info.frames / info.samplerate)
    except Exception:  # noqa: BLE001 (any libsndfile failure: let ffprobe try)
        pass
    from ..audio.ffmpeg import probe_file

    try:
        channels, rate, duration = probe_file(path)
    except SpleeterError as error:
        raise SpleeterError(str(error).removeprefix(f"{path}: ")) from error
    if duration is None:
        raise SpleeterError("duration unknown (ffprobe reports none)")
    return AudioInfo(channels, rate, duration)


@dataclass(frozen=True)
class CsvCheck:
    """What to check one dataset CSV against."""

    label: str
    csv_path: str
    chunk_duration: float
    n_chunks: int


def dataset_checks(params: dict[str, Any]) -> list[CsvCheck]:
    """The CSV files of a training configuration (training, then validation if set)."""
    checks = [
        CsvCheck(
            "train_csv",
            str(params["train_csv"]),
            float(params.get("chunk_duration", DEFAULT_CHUNK_DURATION)),
            int(params.get("n_chunks_per_song", DEFAULT_N_CHUNKS_PER_SONG)),
        )
    ]
    if params.get("validation_csv"):
        checks.append(
            CsvCheck("validation_csv", str(params["validation_csv"]), VALIDATION_CHUNK_DURATION, 1)
        )
    return checks


def check_dataset(
    params: dict[str, Any], data_path: str, prober: Prober = probe, workers: int | None = None
) -> None:
    """Check every row of the configuration's training and validation CSV files.

    Raises:
        DatasetCheckError: a CSV is missing, lacks columns or has no rows, or some rows are
            unusable; the first line says how many, then one line per row.
    """
    reports: list[str] = []
    n_rows = 0
    counts: list[str] = []
    resampled: set[str] = set()
    for check in dataset_checks(params):
        rows = _read(check, params)
        paths = {
            os.path.join(data_path, row[column])
            for _, row in rows
            for column in map(path_column, stem_names(params))
            if row.get(column)
        }
        infos = _probe_all(sorted(paths), prober, workers)
        for line, row in rows:
            problems = _row_problems(row, params, data_path, infos, check)
            if problems:
                first = row.get(path_column(params["mix_name"])) or "?"
                reports.append(f"  {check.csv_path} line {line} ({first}): {'; '.join(problems)}")
        n_rows += len(rows)
        counts.append(f"{check.label} {len(rows)}")
        rate = int(params["sample_rate"])
        resampled |= {
            p for p, i in infos.items() if isinstance(i, AudioInfo) and i.sample_rate != rate
        }
    if reports:
        raise DatasetCheckError(
            f"{len(reports)} of {n_rows} dataset rows cannot be used for training "
            f"(paths relative to {data_path}):\n" + "\n".join(reports)
        )
    if resampled:
        logger.info(
            f"{len(resampled)} audio file(s) are not at {params['sample_rate']} Hz: ffmpeg "
            "resamples them while loading (converting them beforehand makes loading faster)"
        )
    logger.info(f"Dataset check: all rows usable ({', '.join(counts)})")


def _read(check: CsvCheck, params: dict[str, Any]) -> list[tuple[int, dict[str, str]]]:
    """Rows of a CSV (with their line numbers); errors name the configuration key."""
    try:
        return read_dataset_rows(check.csv_path, params)
    except SpleeterError as error:
        raise DatasetCheckError(f"{error} ({check.label} in the configuration)") from error


def _probe_all(
    paths: Sequence[str], prober: Prober, workers: int | None
) -> dict[str, AudioInfo | str]:
    """Probe ``paths`` in parallel: info, or the error message, per path."""

    def one(path: str) -> AudioInfo | str:
        try:
            return prober(path)
        except SpleeterError as error:
            return str(error)

    workers = workers or min(MAX_PROBE_WORKERS, 2 * (os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return dict(zip(paths, pool.map(one, paths), strict=True))


def _row_problems(
    row: dict[str, str],
    params: dict[str, Any],
    data_path: str,
    infos: dict[str, AudioInfo | str],
    check: CsvCheck,
) -> list[str]:
    """Everything wrong with one row (empty when it is usable)."""
    problems: list[str] = []
    stems: dict[str, AudioInfo] = {}
    for stem in stem_names(params):
        column = path_column(stem)
        if not row.get(column):
            problems.append(f"{column} is empty")
            continue
        path = os.path.join(data_path, row[column])
        info = infos[path]
        if isinstance(info, str):
            problems.append(f"{column}: {info} ({path})")
        else:
            stems[stem] = info
    duration = parse_duration(row[DURATION_COLUMN])
    if duration is None:
        problems.append(f"duration {row[DURATION_COLUMN]!r} is not a number of seconds > 0")
    if not stems:
        return problems
    problems += _format_problems(stems, params)
    if len(stems) == len(params["instrument_list"]) + 1 and not problems:
        problems += _length_problems(stems, params, duration, check)
    return problems


def _listing(stems: dict[str, AudioInfo], attribute: str, unit: str) -> str:
    return ", ".join(f"{stem} {getattr(info, attribute):g}{unit}" for stem, info in stems.items())


def _format_problems(stems: dict[str, AudioInfo], params: dict[str, Any]) -> list[str]:
    problems = []
    n_channels = int(params["n_channels"])
    if any(info.channels != n_channels for info in stems.values()):
        problems.append(
            f"channels: {_listing(stems, 'channels', '')} (the configuration's n_channels is "
            f"{n_channels})"
        )
    if len({info.sample_rate for info in stems.values()}) > 1:
        problems.append(f"sample rates differ: {_listing(stems, 'sample_rate', ' Hz')}")
    return problems


def _length_problems(
    stems: dict[str, AudioInfo], params: dict[str, Any], duration: float, check: CsvCheck
) -> list[str]:
    lengths = [info.duration for info in stems.values()]
    shortest = min(lengths)
    if max(lengths) - shortest > LENGTH_TOLERANCE:
        return [f"lengths differ: {_listing(stems, 'duration', ' s')}"]
    needed = min_example_samples(params) / float(params["sample_rate"])
    if shortest < needed:
        return [
            f"too short: {shortest:.2f} s, a training example (T = {params['T']} frames) needs "
            f"{needed:.2f} s"
        ]
    for start in segment_starts(duration, check.chunk_duration, check.n_chunks):
        available = min(shortest - start, check.chunk_duration)
        if start >= shortest:
            return [
                f"duration column says {duration:g} s but the audio lasts {shortest:.2f} s: the "
                f"chunk at {start:.2f} s starts after the end"
            ]
        if available < needed:
            return [
                f"duration column says {duration:g} s but the audio lasts {shortest:.2f} s: the "
                f"chunk at {start:.2f} s has {max(available, 0):.2f} s of audio, a training "
                f"example needs {needed:.2f} s"
            ]
    return []
