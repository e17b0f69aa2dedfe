"""Unlabelled audio for pretraining: files, chunks, log-mel frames and masked examples.

The audio is a directory (every audio file below it, recursively, by extension) or an
upstream-format dataset CSV (its ``<mix_name>_path`` column, paths relative to the data
directory as for ``spleeter train``). Each file gives up to ``n_chunks_per_file`` chunks of
``chunk_duration`` seconds, placed as the training dataset places its chunks (a file shorter
than a chunk is one chunk). Every chunk is decoded once, at the configuration's sample rate and
channel count, and kept in memory as log-mel frames (``n_mels`` float32 per frame: about 11 kB
per second of audio at 64 bands).

Example ``i`` of iteration ``k``'s stream depends only on ``(random_seed, k, i)``: the chunk
(each epoch its own seeded order), the ``frames``-frame crop and the span mask, so a resumed run
sees exactly the batches an uninterrupted one would.
"""

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import SpleeterError
from ..audio.adapter import AudioAdapter
from ..audio.features import chunk_features_magnitude, encoder_mel_matrix, log_mel
from ..dataset import epoch_order, load_audio, path_column, read_csv_rows, segment_starts
from ..model.encoder_config import EncoderConfig
from ..utils.logging import logger
from .config import PretrainSettings
from .masking import span_mask

WORKERS = 4
"""Threads decoding chunks (file reads and FFTs release the GIL)."""


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
    settings: PretrainSettings,
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


class PretrainCorpus:
    """Log-mel frames ``(frames, n_mels)`` of every chunk, computed once."""

    def __init__(self, chunks: list[AudioChunk], features: list[np.ndarray]) -> None:
        self.chunks = chunks
        self.features = features

    @classmethod
    def load(
        cls,
        chunks: list[AudioChunk],
        params: dict[str, Any],
        config: EncoderConfig,
        audio_adapter: AudioAdapter,
        min_frames: int,
        workers: int = WORKERS,
    ) -> "PretrainCorpus":
        """Decode every chunk and compute its log-mel frames (on the separator's STFT grid,
        first ``F`` bins, the encoder's mel matrix). Chunks that fail to decode or give fewer
        than ``min_frames`` frames are skipped with a warning.

        Raises:
            SpleeterError: no chunk is usable.
        """
        frame_length, frame_step = int(params["frame_length"]), int(params["frame_step"])
        n_bins, channels = int(params["F"]), int(params["n_channels"])
        matrix = encoder_mel_matrix(config, n_bins)
        rate = int(params["sample_rate"])

        def features(chunk: AudioChunk) -> np.ndarray | str:
            try:
                waveform = load_audio(chunk.path, chunk.start, chunk.duration, rate, audio_adapter)
            except SpleeterError as error:
                return f"{chunk.path} at {chunk.start:.1f} s: {error}"
            magnitude = chunk_features_magnitude(
                waveform, frame_length, frame_step, n_bins, channels
            )
            if magnitude.shape[0] < min_frames:
                return f"{chunk.path} at {chunk.start:.1f} s: {magnitude.shape[0]} frames"
            return log_mel(magnitude, matrix)

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            results = list(pool.map(features, chunks))
        kept = [(c, r) for c, r in zip(chunks, results, strict=True) if not isinstance(r, str)]
        problems = [r for r in results if isinstance(r, str)]
        if problems:
            logger.warning(f"Skipping {len(problems)} chunk(s): " + "; ".join(problems[:5]))
        if not kept:
            raise SpleeterError("No audio chunk could be decoded for pretraining")
        corpus = cls([c for c, _ in kept], [r for _, r in kept])  # type: ignore[misc]
        seconds = sum(f.shape[0] for f in corpus.features) * frame_step / rate
        logger.info(f"Pretraining audio: {len(corpus.features)} chunks, {seconds / 60:.1f} min")
        return corpus

    @property
    def frame_counts(self) -> list[int]:
        return [f.shape[0] for f in self.features]


class MaskedExamples:
    """The random-access stream of masked-prediction examples of one iteration."""

    def __init__(
        self,
        features: list[np.ndarray],
        units: list[np.ndarray],
        settings: PretrainSettings,
        iteration: int,
    ) -> None:
        self.features = features
        self.units = units
        self.settings = settings
        self.seed = [settings.random_seed, iteration]

    def example(self, position: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(log_mel (frames, n_mels), mask (frames,), units (frames,))`` of example
        ``position``."""
        epoch, offset = divmod(int(position), len(self.features))
        chunk = int(epoch_order((*self.seed, epoch), len(self.features))[offset])
        frames = self.settings.frames
        rng = np.random.default_rng([*self.seed, epoch, int(position)])
        first = int(rng.integers(0, self.features[chunk].shape[0] - frames + 1))
        mask = span_mask(
            rng,
            frames,
            self.settings.mask_prob,
            self.settings.mask_length,
            self.settings.min_masks,
        )
        window = slice(first, first + frames)
        return self.features[chunk][window], mask, self.units[chunk][window]

    def batch(self, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The examples of training step ``step`` (0-based), stacked."""
        size = self.settings.batch_size
        examples = [self.example(step * size + k) for k in range(size)]
        return tuple(np.stack(parts) for parts in zip(*examples, strict=True))  # type: ignore[return-value]
