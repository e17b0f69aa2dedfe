"""Unlabelled audio as training chunks: the corpus of every task trained without stems
(masked prediction for ``spleeter pretrain``, reconstruction for the autoencoder).

Every audio file below a directory (or the mixtures a CSV lists), probed in parallel (headers
only); each usable file gives ``n_chunks_per_file`` chunks of ``chunk_duration`` seconds.
"""

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from .. import SpleeterError
from ..dataset import path_column, read_csv_rows, segment_starts
from ..utils.logging import logger


class ChunkSettings(Protocol):
    """What chunk planning reads of a task's settings."""

    frames: int
    chunk_duration: float
    n_chunks_per_file: int


@dataclass(frozen=True)
class AudioChunk:
    """``duration`` seconds of ``path`` from ``start``."""

    path: str
    start: float
    duration: float


def audio_files(data: str, csv_path: str | None = None, mix_name: str = "mix") -> list[str]:
    """The audio files to pretrain on.

    Raises:
        SpleeterError: the directory or CSV is missing, or names no audio.
    """
    if csv_path:
        header, rows = read_csv_rows(csv_path)
        column = path_column(mix_name)
        if column not in header:
            raise SpleeterError(f"Dataset file {csv_path} has no {column} column")
        files = [os.path.join(data, row[column]) for _, row in rows if row.get(column)]
        if not files:
            raise SpleeterError(f"Dataset file {csv_path} lists no audio")
        return files
    if not os.path.isdir(data):
        raise SpleeterError(f"Audio directory {data} does not exist")
    from ..inputs import expand_inputs

    files, _ = expand_inputs([data], recursive=True)
    if not files:
        raise SpleeterError(f"No audio files found under {data}")
    return files


def min_chunk_seconds(params: dict[str, Any], frames: int) -> float:
    """Seconds of audio giving ``frames`` STFT frames (one pretraining example)."""
    samples = (frames - 1) * int(params["frame_step"]) + int(params["frame_length"])
    return samples / float(params["sample_rate"])


def plan_chunks(
    files: list[str],
    params: dict[str, Any],
    settings: ChunkSettings,
    prober: Callable[[str], Any] | None = None,
) -> list[AudioChunk]:
    """The chunks of every usable file (files are probed in parallel, headers only).

    Unusable files (unreadable, shorter than one example) are skipped with one warning.

    Raises:
        SpleeterError: no file is usable (every problem listed).
    """
    if prober is None:
        from ..training.checks import probe as prober
    minimum = min_chunk_seconds(params, settings.frames)

    def check(path: str) -> tuple[list[AudioChunk], str | None]:
        try:
            duration = float(prober(path).duration)
        except SpleeterError as error:
            return [], f"{path}: {error}"
        if duration < minimum:
            return [], f"{path}: too short ({duration:.2f} s, an example needs {minimum:.2f} s)"
        if duration <= settings.chunk_duration:
            return [AudioChunk(path, 0.0, duration)], None
        starts = segment_starts(duration, settings.chunk_duration, settings.n_chunks_per_file)
        return [AudioChunk(path, start, settings.chunk_duration) for start in starts], None

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(check, files))
    chunks = [chunk for found, _ in results for chunk in found]
    problems = [problem for _, problem in results if problem]
    if not chunks:
        raise SpleeterError(
            f"None of the {len(files)} audio file(s) can be used for pretraining:\n  "
            + "\n  ".join(problems)
        )
    if problems:
        logger.warning(
            f"Skipping {len(problems)} of {len(files)} audio files: " + "; ".join(problems[:5])
        )
    return chunks
