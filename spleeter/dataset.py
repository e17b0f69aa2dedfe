"""Training and validation input pipelines (upstream's ``spleeter.dataset``).

A dataset is a CSV file with one row per song: ``<mix_name>_path``, one ``<instrument>_path`` per
instrument (paths relative to the data directory) and ``duration`` (seconds). Each song gives
``n_chunks_per_song`` chunks of ``chunk_duration`` seconds (upstream's placement, 0.5 s from
either end); each chunk of every stem is decoded once, turned into a magnitude spectrogram
(periodic Hann window, no padding, first ``F`` bins) and stored as uint8 decibels, optionally
in a cache. A training example is a random ``T``-frame crop, the same for the mixture and the
instruments; a validation example is the centre ``T`` frames.

Unlike upstream's, the training stream is random-access: example ``i`` depends only on the seed
and ``i`` (epoch ``i // n_chunks`` visits the chunks in its own seeded order), so training
resumed at step ``s`` sees exactly the batches an uninterrupted run would, every epoch is
reshuffled, and the cache is one file per chunk that any later run (or another process) reuses.

Examples are prepared by Python threads (:meth:`ExampleStream.batches`, numpy batches, what the
training loop consumes); :func:`get_training_dataset` and :func:`get_validation_dataset` wrap
them in a ``tf.data.Dataset`` for upstream's API. No Python callback runs inside TensorFlow's
own threads: ``tf.numpy_function`` in a parallel ``map`` hangs interpreter shutdown when an
iterator is still alive.
"""

import contextlib
import csv
import hashlib
import json
import os
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from . import SpleeterError
from .audio.adapter import AudioAdapter
from .audio.convertor import db_uint_spectrogram_to_gain, spectrogram_to_db_uint
from .audio.spectrogram import chunk_magnitude
from .utils.logging import logger

DEFAULT_AUDIO_PARAMS: dict[str, Any] = {
    "instrument_list": ("vocals", "accompaniment"),
    "mix_name": "mix",
    "sample_rate": 44100,
    "frame_length": 4096,
    "frame_step": 1024,
    "T": 512,
    "F": 1024,
}
"""Upstream's default audio parameters (kept for compatibility; configurations set their own)."""

DEFAULT_CHUNK_DURATION = 20.0
"""Seconds per training chunk when the configuration has no ``chunk_duration``."""

VALIDATION_CHUNK_DURATION = 12.0
"""Seconds of the single, central validation chunk of each song (fixed, as upstream)."""

DEFAULT_N_CHUNKS_PER_SONG = 2
"""Training chunks per song when the configuration has no ``n_chunks_per_song``."""

DEFAULT_BATCH_SIZE = 8
"""Examples per batch when the configuration has no ``batch_size``."""

DEFAULT_WORKERS = 4
"""Threads preparing examples (upstream's ``num_parallel_calls``)."""

DURATION_COLUMN = "duration"
"""CSV column holding each song's length in seconds."""

DIRECT_READ_EXTENSIONS = (".wav", ".wave", ".flac", ".aif", ".aiff")
"""Lossless formats read directly with libsndfile (see :meth:`DatasetBuilder.load_waveform`)."""

_CACHE_VERSION = 1
"""Bumped whenever the cached representation changes (old entries are then ignored)."""


class DatasetError(SpleeterError, ValueError):
    """Unusable dataset or dataset parameters (a ``ValueError`` too, as upstream raised)."""


def path_column(instrument: str) -> str:
    """CSV column of an instrument's (or the mixture's) audio path."""
    return f"{instrument}_path"


def csv_columns(params: dict[str, Any]) -> list[str]:
    """Columns a dataset CSV must have for the configuration ``params``."""
    return [path_column(stem) for stem in stem_names(params)] + [DURATION_COLUMN]


CSV_KEYS = ("train_csv", "validation_csv")
"""The configuration keys naming dataset CSV files."""


def resolve_csv_paths(params: dict[str, Any], data_path: str) -> dict[str, Any]:
    """``params`` with relative CSV paths found: relative to the working directory when the
    file is there (upstream's rule), else relative to the data directory ``-d`` (where a
    rendered dataset keeps them), else a CSV bundled with spleeter of that name (MUSDB18's
    track lists, ``musdb_train.csv`` ...). Missing files stay as given, for the dataset check
    to report."""
    from importlib import resources as importlib_resources

    from . import resources

    resolved = dict(params)
    for key in CSV_KEYS:
        path = params.get(key)
        if not path or os.path.isabs(path) or os.path.isfile(path):
            continue
        bundled = Path(str(importlib_resources.files(resources) / path))
        for candidate in (Path(data_path) / path, bundled):
            if candidate.is_file():
                resolved[key] = str(candidate)
                break
    return resolved


def read_csv_rows(csv_path: str) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """The header and the non-empty rows of a CSV file, each with its line number.

    Raises:
        DatasetError: the file cannot be read.
    """
    try:
        with open(csv_path, newline="", encoding="utf-8") as stream:
            reader = csv.DictReader(stream)
            header = [name.strip() for name in reader.fieldnames or []]
            reader.fieldnames = header
            rows = []
            for row in reader:
                values = {k: v.strip() for k, v in row.items() if k and isinstance(v, str)}
                if any(values.values()):
                    rows.append((reader.line_num, values))
    except FileNotFoundError as error:
        raise DatasetError(
            f"Dataset file {csv_path} not found (a relative path is looked for in the working "
            "directory, then in the data directory -d)"
        ) from error
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DatasetError(f"Dataset file {csv_path} cannot be read: {error}") from error
    return header, rows


def missing_columns(header: Sequence[str], params: dict[str, Any]) -> list[str]:
    """Columns required by ``params`` that ``header`` lacks."""
    return [column for column in csv_columns(params) if column not in header]


@dataclass(frozen=True)
class Song:
    """One CSV row: audio paths (relative to the data directory) and duration in seconds."""

    line: int
    paths: dict[str, str]
    duration: float


@dataclass(frozen=True)
class Segment:
    """A chunk of a song to decode: ``duration`` seconds from ``start``."""

    song: Song
    start: float
    duration: float


def stem_names(params: dict[str, Any]) -> list[str]:
    """The mixture and the instruments of a configuration: the audio columns of a row."""
    return [params["mix_name"], *params["instrument_list"]]


def parse_duration(text: str) -> float | None:
    """A row's ``duration`` in seconds, or None when it is not a number of seconds > 0."""
    try:
        duration = float(text)
    except ValueError:
        return None
    return duration if np.isfinite(duration) and duration > 0 else None


def read_dataset_rows(csv_path: str, params: dict[str, Any]) -> list[tuple[int, dict[str, str]]]:
    """The non-empty rows of a dataset CSV (with their line numbers), its columns checked.

    Raises:
        DatasetError: the file is missing or unreadable, lacks columns or has no rows.
    """
    header, rows = read_csv_rows(csv_path)
    missing = missing_columns(header, params)
    if missing:
        raise DatasetError(
            f"Dataset file {csv_path} lacks column(s) {', '.join(missing)} "
            f"(expected {', '.join(csv_columns(params))})"
        )
    if not rows:
        raise DatasetError(f"Dataset file {csv_path} has no rows")
    return rows


def read_songs(csv_path: str, params: dict[str, Any]) -> list[Song]:
    """The songs of a dataset CSV, for the stems of ``params``.

    Raises:
        DatasetError: the file is missing, lacks columns, has no rows or a bad duration.
    """
    songs = []
    for line, row in read_dataset_rows(csv_path, params):
        duration = parse_duration(row[DURATION_COLUMN])
        if duration is None:
            raise DatasetError(
                f"{csv_path}, line {line}: duration {row[DURATION_COLUMN]!r} is not a number of "
                "seconds > 0"
            )
        paths = {stem: row[path_column(stem)] for stem in stem_names(params)}
        songs.append(Song(line, paths, duration))
    return songs


def segment_starts(duration: float, chunk_duration: float, n_chunks: int) -> list[float]:
    """Start (seconds) of each chunk of a song, upstream's placement.

    Several chunks spread evenly from ``MARGIN`` after the start to ``MARGIN`` before the end;
    a single chunk is centred. Starts are never negative.
    """
    margin = DatasetBuilder.MARGIN
    if n_chunks <= 0:
        raise DatasetError(f"n_chunks_per_song must be positive (got {n_chunks})")
    if n_chunks == 1:
        return [max(duration / 2 - chunk_duration / 2, 0.0)]
    spread = (duration - chunk_duration - 2 * margin) / (n_chunks - 1)
    return [max(k * spread + margin, 0.0) for k in range(n_chunks)]


def compute_segments(songs: Sequence[Song], chunk_duration: float, n_chunks: int) -> list[Segment]:
    """Every chunk of every song, in upstream's order: the last chunk of each song, then the
    first, the second... (each pass in CSV order)."""
    starts = [segment_starts(song.duration, chunk_duration, n_chunks) for song in songs]
    order = [n_chunks - 1, *range(n_chunks - 1)]
    return [
        Segment(song, song_starts[k], chunk_duration)
        for k in order
        for song, song_starts in zip(songs, starts, strict=True)
    ]


def min_example_samples(params: dict[str, Any]) -> int:
    """Samples a chunk needs for ``T`` spectrogram frames."""
    return (int(params["T"]) - 1) * int(params["frame_step"]) + int(params["frame_length"])


@lru_cache(maxsize=4)
def epoch_order(entropy: tuple[int, ...], size: int) -> np.ndarray:
    """The shuffled order of ``size`` items for one epoch, seeded by ``entropy`` (the seeds
    and the epoch): drawn once per epoch, not once per example."""
    order = np.random.default_rng(list(entropy)).permutation(size)
    order.flags.writeable = False
    return order


@dataclass
class Chunk:
    """Spectrograms of one segment: ``{stem: (frames, F, C)}`` uint8 dB with their range, or
    float32 magnitudes (``ranges`` empty)."""

    spectrograms: dict[str, np.ndarray]
    ranges: dict[str, tuple[float, float]]

    @property
    def frames(self) -> int:
        """Frames common to every stem (upstream crops all stems to the shortest)."""
        return min(value.shape[0] for value in self.spectrograms.values())

    def crop(self, start: int, length: int) -> dict[str, np.ndarray]:
        """Frames ``[start, start + length)`` of every stem, as float32 magnitudes."""
        cropped = {}
        for stem, value in self.spectrograms.items():
            window = value[start : start + length]
            if stem in self.ranges:
                window = db_uint_spectrogram_to_gain(window, *self.ranges[stem])
            cropped[stem] = np.asarray(window, dtype=np.float32)
        return cropped


def _read_lossless(path: str, offset: float, duration: float, sample_rate: int) -> Any:
    """The ``(n, c)`` float32 samples of a lossless file at ``sample_rate``, read with
    libsndfile, or None (another rate, or a file libsndfile cannot read)."""
    import soundfile

    try:
        with soundfile.SoundFile(path) as stream:
            if stream.samplerate != sample_rate:
                return None
            first = min(int(round(offset * sample_rate)), stream.frames)
            count = min(int(round(duration * sample_rate)), stream.frames - first)
            stream.seek(first)
            waveform = stream.read(count, dtype="float32", always_2d=True)
    except (RuntimeError, OSError, ValueError, TypeError):
        return None
    if not len(waveform):
        raise SpleeterError(f"{path}: offset {offset:g} s is past the end of the audio")
    return waveform


def load_audio(
    path: str, offset: float, duration: float, sample_rate: int, audio_adapter: AudioAdapter
) -> np.ndarray:
    """``duration`` seconds of ``path`` from ``offset``, at ``sample_rate``, ``(n, c)`` float32.

    With the default ffmpeg adapter, lossless files already at that rate (WAV, FLAC, AIFF)
    are read directly by libsndfile: the same samples ffmpeg decodes, without starting two
    processes per file. Everything else goes through the audio adapter.

    Raises:
        SpleeterError: the file cannot be decoded.
    """
    direct = type(audio_adapter).__name__ == "FFMPEGProcessAudioAdapter"
    if direct and path.lower().endswith(DIRECT_READ_EXTENSIONS):
        waveform = _read_lossless(path, offset, duration, int(sample_rate))
        if waveform is not None:
            return waveform
    waveform, _ = audio_adapter.load(
        path, offset=offset, duration=duration, sample_rate=sample_rate
    )
    return np.asarray(waveform, dtype=np.float32)


class SpectrogramCache:
    """One ``.npz`` file per chunk under a directory named by the configuration's cache prefix.

    The file name is a digest of everything the chunk depends on (absolute paths, file sizes and
    modification times, start, duration, STFT parameters), so a changed file, CSV or
    configuration never reads a stale entry. Entries are written atomically; several processes
    may share a cache.
    """

    def __init__(self, prefix: str) -> None:
        self.directory = os.fspath(prefix)

    def key(self, segment_paths: dict[str, str], segment: Segment, params: dict) -> str:
        """Digest identifying a chunk's spectrograms."""
        files = {}
        for stem, path in segment_paths.items():
            try:
                status = os.stat(path)
                files[stem] = [os.path.abspath(path), status.st_size, status.st_mtime_ns]
            except OSError:
                files[stem] = [os.path.abspath(path)]
        description = {
            "version": _CACHE_VERSION,
            "files": files,
            "start": round(segment.start, 6),
            "duration": round(segment.duration, 6),
            "audio": {k: params[k] for k in ("sample_rate", "frame_length", "frame_step", "F")},
        }
        text = json.dumps(description, sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()

    def _path(self, key: str) -> str:
        return os.path.join(self.directory, f"{key}.npz")

    def load(self, key: str) -> Chunk | None:
        """The cached chunk, or None (missing or unreadable entry)."""
        try:
            with np.load(self._path(key)) as stored:
                stems = [name for name in stored.files if not name.startswith("range/")]
                spectrograms = {name: stored[name] for name in stems}
                ranges = {
                    name: tuple(float(x) for x in stored[f"range/{name}"])
                    for name in stems
                    if f"range/{name}" in stored.files
                }
        except (OSError, ValueError, KeyError, EOFError):
            return None
        return Chunk(spectrograms, ranges)  # type: ignore[arg-type]

    def store(self, key: str, chunk: Chunk) -> None:
        """Write ``chunk`` (errors are logged, not raised: the cache is an optimisation)."""
        arrays = dict(chunk.spectrograms)
        arrays.update({f"range/{k}": np.asarray(v) for k, v in chunk.ranges.items()})
        temporary = os.path.join(self.directory, f".{key}.{os.getpid()}.{time.monotonic_ns()}.npz")
        try:
            os.makedirs(self.directory, exist_ok=True)
            np.savez(temporary, **arrays)
            os.replace(temporary, self._path(key))
        except OSError as error:
            logger.warning(f"Cannot write the spectrogram cache in {self.directory}: {error}")
            with contextlib.suppress(OSError):
                os.remove(temporary)


class DatasetBuilder:
    """Builds the ``tf.data`` pipeline of a dataset CSV (upstream's class and arguments).

    Args:
        audio_params: the configuration (``T``, ``F``, ``sample_rate``, ``frame_length``,
            ``frame_step``, ``mix_name``, ``instrument_list``, ``n_channels``).
        audio_adapter: loads the audio files.
        audio_path: the data directory the CSV paths are relative to.
        random_seed: seed of the chunk order and of the crops.
        chunk_duration: seconds decoded per chunk.
    """

    MARGIN: float = 0.5
    """Seconds left out at the beginning and the end of songs with several chunks."""

    WAIT_PERIOD: int = 60
    """Upstream's cache polling period (kept for compatibility; this cache needs no waiting)."""

    def __init__(
        self,
        audio_params: dict[str, Any],
        audio_adapter: AudioAdapter,
        audio_path: str,
        random_seed: int = 0,
        chunk_duration: float = DEFAULT_CHUNK_DURATION,
    ) -> None:
        self._params = audio_params
        self._T = int(audio_params["T"])
        self._F = int(audio_params["F"])
        self._sample_rate = audio_params["sample_rate"]
        self._frame_length = int(audio_params["frame_length"])
        self._frame_step = int(audio_params["frame_step"])
        self._mix_name = audio_params["mix_name"]
        self._n_channels = int(audio_params["n_channels"])
        self._instruments = [self._mix_name, *audio_params["instrument_list"]]
        self._chunk_duration = float(chunk_duration)
        self._audio_adapter = audio_adapter
        self._audio_path = audio_path
        self._random_seed = int(random_seed)
        self.check_parameters_compatibility()

    def check_parameters_compatibility(self) -> None:
        """Raise if ``F`` exceeds the STFT's bins or a chunk gives fewer than ``T`` frames."""
        if self._frame_length / 2 + 1 < self._F:
            raise DatasetError(
                f"F is too large ({self._F}) and must be set to at most frame_length/2+1 "
                f"({self._frame_length // 2 + 1}). Decrease F or increase frame_length to fix."
            )
        frames = (self._chunk_duration * self._sample_rate - self._frame_length) / self._frame_step
        if frames < self._T:
            raise DatasetError(
                f"T is too large ({self._T}) considering STFT parameters and chunk duration "
                f"({self._chunk_duration:g} s gives {max(int(frames), 0)} frames). Make sure the "
                "spectrogram time dimension of chunks is larger than T (for instance reducing T "
                "or frame_step or increasing chunk duration)."
            )

    def expand_path(self, relative: str) -> str:
        """A CSV path joined to the data directory (absolute paths are kept)."""
        return os.path.join(self._audio_path, relative)

    def load_waveform(self, path: str, offset: float, duration: float) -> np.ndarray:
        """``duration`` seconds of ``path`` from ``offset``, at the configuration's rate.

        With the default ffmpeg adapter, lossless files already at that rate (WAV, FLAC, AIFF)
        are read directly by libsndfile: the same samples ffmpeg decodes, without starting two
        processes per file. Everything else goes through the audio adapter.
        """
        return load_audio(path, offset, duration, self._sample_rate, self._audio_adapter)

    def load_chunk(self, segment: Segment, convert_to_uint: bool = True) -> Chunk:
        """Decode every stem of ``segment`` once and compute its spectrograms.

        Raises:
            SpleeterError: a file cannot be decoded or has the wrong number of channels.
        """
        spectrograms: dict[str, np.ndarray] = {}
        ranges: dict[str, tuple[float, float]] = {}
        for stem in self._instruments:
            path = self.expand_path(segment.song.paths[stem])
            waveform = self.load_waveform(path, segment.start, segment.duration)
            if waveform.ndim != 2 or waveform.shape[1] != self._n_channels:
                raise SpleeterError(
                    f"{path}: {waveform.shape[-1]} channel(s), the configuration says "
                    f"n_channels = {self._n_channels}"
                )
            spectrogram = chunk_magnitude(waveform, self._frame_length, self._frame_step, self._F)
            if convert_to_uint and spectrogram.size:
                spectrogram, low, high = spectrogram_to_db_uint(spectrogram)
                ranges[stem] = (low, high)
            spectrograms[stem] = spectrogram
        return Chunk(spectrograms, ranges)

    def stream(
        self,
        csv_path: str,
        shuffle: bool = True,
        convert_to_uint: bool = True,
        random_time_crop: bool = True,
        cache_directory: str | None = None,
        n_chunks_per_song: int = DEFAULT_N_CHUNKS_PER_SONG,
    ) -> "ExampleStream":
        """The examples of a dataset CSV as a random-access :class:`ExampleStream`."""
        songs = read_songs(csv_path, self._params)
        return ExampleStream(
            self,
            compute_segments(songs, self._chunk_duration, n_chunks_per_song),
            shuffle=shuffle,
            random_time_crop=random_time_crop,
            convert_to_uint=convert_to_uint,
            cache=SpectrogramCache(cache_directory) if cache_directory else None,
        )

    def build(
        self,
        csv_path: str,
        batch_size: int = DEFAULT_BATCH_SIZE,
        shuffle: bool = True,
        convert_to_uint: bool = True,
        random_data_augmentation: bool = False,
        random_time_crop: bool = True,
        infinite_generator: bool = True,
        cache_directory: str | None = None,
        wait_for_cache: bool = False,
        num_parallel_calls: int = DEFAULT_WORKERS,
        n_chunks_per_song: int = DEFAULT_N_CHUNKS_PER_SONG,
        start: int = 0,
    ) -> Any:
        """The ``tf.data.Dataset`` of ``({"<mix>_spectrogram": x}, {"<instr>_spectrogram": y})``
        batches, each ``(batch, T, F, n_channels)`` float32 (upstream's arguments).

        ``cache_directory`` is the configuration's cache prefix (None: no cache).
        ``wait_for_cache`` is accepted for compatibility and has no effect (entries are
        per chunk and written atomically). ``num_parallel_calls`` threads prepare examples.
        ``start`` is the first example of the stream (to resume training).
        ``random_data_augmentation`` (upstream's TF1-only time stretch and pitch shift,
        disabled in upstream's pipelines) is not supported.
        """
        if random_data_augmentation:
            raise DatasetError("random_data_augmentation is not supported")
        del wait_for_cache
        stream = self.stream(
            csv_path,
            shuffle=shuffle,
            convert_to_uint=convert_to_uint,
            random_time_crop=random_time_crop,
            cache_directory=cache_directory,
            n_chunks_per_song=n_chunks_per_song,
        )
        stop = None if infinite_generator else len(stream)
        return stream.dataset(batch_size, start, stop, num_parallel_calls)

    @property
    def instruments(self) -> list[str]:
        """The mixture then the instruments (the stems loaded for each chunk)."""
        return list(self._instruments)


class ExampleStream:
    """The examples of a dataset as a function of their position in the stream.

    Example ``i`` is chunk ``order(i // n)[i % n]`` (``order`` the identity without shuffling,
    a permutation seeded by ``(seed, epoch)`` otherwise), cropped at a frame drawn from a
    generator seeded by ``(seed, i)`` or at the centre.
    """

    def __init__(
        self,
        builder: DatasetBuilder,
        segments: list[Segment],
        shuffle: bool,
        random_time_crop: bool,
        convert_to_uint: bool,
        cache: SpectrogramCache | None,
    ) -> None:
        self.builder = builder
        self.segments = segments
        self.shuffle = shuffle
        self.random_time_crop = random_time_crop
        self.convert_to_uint = convert_to_uint
        self.cache = cache
        self.seed = builder._random_seed

    def segment_index(self, position: int) -> int:
        """The chunk that example ``position`` of the stream is taken from."""
        epoch, offset = divmod(int(position), len(self.segments))
        if not self.shuffle:
            return offset
        return int(epoch_order((self.seed, epoch), len(self.segments))[offset])

    def chunk(self, segment: Segment) -> Chunk:
        """A segment's spectrograms, from the cache when present."""
        if self.cache is None:
            return self.builder.load_chunk(segment, self.convert_to_uint)
        paths = {stem: self.builder.expand_path(p) for stem, p in segment.song.paths.items()}
        key = self.cache.key(paths, segment, self.builder._params)
        chunk = self.cache.load(key)
        if chunk is None:
            chunk = self.builder.load_chunk(segment, self.convert_to_uint)
            self.cache.store(key, chunk)
        return chunk

    def example(self, position: int) -> dict[str, np.ndarray] | None:
        """Example ``position``: ``{stem: (T, F, C)}`` float32, or None if its chunk is
        unusable (undecodable or shorter than ``T`` frames; a warning says which)."""
        segment = self.segments[self.segment_index(position)]
        T = self.builder._T
        try:
            chunk = self.chunk(segment)
        except SpleeterError as error:
            logger.warning(f"Skipping a chunk of CSV line {segment.song.line}: {error}")
            return None
        frames = chunk.frames
        if frames < T:
            logger.warning(
                f"Skipping the chunk at {segment.start:.2f} s of CSV line {segment.song.line}: "
                f"{frames} frames, fewer than T = {T}"
            )
            return None
        if self.random_time_crop:
            rng = np.random.default_rng([self.seed, int(position)])
            first = int(rng.integers(0, frames - T + 1))
        else:
            first = int(max(frames / 2 - T / 2, 0))
        return chunk.crop(first, T)

    def __len__(self) -> int:
        """Chunks in one pass over the dataset."""
        return len(self.segments)

    def batches(
        self,
        batch_size: int,
        start: int = 0,
        stop: int | None = None,
        workers: int = DEFAULT_WORKERS,
    ) -> Iterator[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]:
        """Numpy batches of the examples at positions ``[start, stop)`` (forever if None).

        Each batch is ``({"<mix>_spectrogram": x}, {"<instrument>_spectrogram": y})``, arrays
        ``(batch, T, F, n_channels)`` float32; the last one may be smaller. ``workers`` threads
        prepare the examples, up to ``2 * batch_size + workers`` positions ahead, in order.
        """
        lookahead = 2 * batch_size + workers
        executor = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="dataset")
        pending: deque[Future] = deque()
        position = start
        try:
            ready: list[dict[str, np.ndarray]] = []
            while True:
                while len(pending) < lookahead and (stop is None or position < stop):
                    pending.append(executor.submit(self.example, position))
                    position += 1
                if not pending:
                    break
                example = pending.popleft().result()
                if example is not None:
                    ready.append(example)
                if len(ready) == batch_size:
                    yield self._collate(ready)
                    ready = []
            if ready:
                yield self._collate(ready)
        finally:
            executor.shutdown(wait=False, cancel_futures=True)

    def _collate(
        self, examples: list[dict[str, np.ndarray]]
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        stacked = {
            f"{stem}_spectrogram": np.stack([example[stem] for example in examples])
            for stem in self.builder.instruments
        }
        mix_key = f"{self.builder._mix_name}_spectrogram"
        return {mix_key: stacked.pop(mix_key)}, stacked

    def dataset(self, batch_size: int, start: int, stop: int | None, workers: int) -> Any:
        """:meth:`batches` as a ``tf.data.Dataset`` (``from_generator``: the parallelism is in
        Python threads, so no Python callback runs inside TensorFlow's own threads)."""
        import tensorflow as tf

        builder = self.builder
        spec = tf.TensorSpec((None, builder._T, builder._F, builder._n_channels), tf.float32)
        names = [f"{stem}_spectrogram" for stem in builder.instruments]
        signature = ({names[0]: spec}, {name: spec for name in names[1:]})
        return tf.data.Dataset.from_generator(
            lambda: self.batches(batch_size, start, stop, workers), output_signature=signature
        )


def training_stream(
    audio_params: dict[str, Any], audio_adapter: AudioAdapter, audio_path: str
) -> ExampleStream:
    """The endless, shuffled training examples of ``audio_params['train_csv']``.

    ``chunk_duration`` (default 20 s), ``n_chunks_per_song`` (2), ``random_seed`` (0) and
    ``training_cache`` (None) come from the configuration.
    """
    builder = DatasetBuilder(
        audio_params,
        audio_adapter,
        audio_path,
        chunk_duration=float(audio_params.get("chunk_duration", DEFAULT_CHUNK_DURATION)),
        random_seed=int(audio_params.get("random_seed", 0)),
    )
    return builder.stream(
        str(audio_params.get("train_csv")),
        cache_directory=audio_params.get("training_cache"),
        n_chunks_per_song=int(audio_params.get("n_chunks_per_song", DEFAULT_N_CHUNKS_PER_SONG)),
    )


def validation_stream(
    audio_params: dict[str, Any], audio_adapter: AudioAdapter, audio_path: str
) -> ExampleStream:
    """The validation examples of ``audio_params['validation_csv']``: the central 12-second
    chunk of each song, centre-cropped to ``T`` frames, in CSV order."""
    builder = DatasetBuilder(
        audio_params, audio_adapter, audio_path, chunk_duration=VALIDATION_CHUNK_DURATION
    )
    return builder.stream(
        str(audio_params.get("validation_csv")),
        cache_directory=audio_params.get("validation_cache"),
        n_chunks_per_song=1,
        shuffle=False,
        random_time_crop=False,
    )


def get_training_dataset(
    audio_params: dict[str, Any],
    audio_adapter: AudioAdapter,
    audio_path: str,
    *,
    start_step: int = 0,
) -> Any:
    """The endless, shuffled training ``tf.data.Dataset`` of ``audio_params['train_csv']``
    (see :func:`training_stream`), in batches of ``batch_size`` (default 8); ``start_step``
    skips the batches of the steps already trained (without decoding them)."""
    batch_size = int(audio_params.get("batch_size", DEFAULT_BATCH_SIZE))
    stream = training_stream(audio_params, audio_adapter, audio_path)
    return stream.dataset(batch_size, int(start_step) * batch_size, None, DEFAULT_WORKERS)


def get_validation_dataset(
    audio_params: dict[str, Any], audio_adapter: AudioAdapter, audio_path: str
) -> Any:
    """The validation ``tf.data.Dataset`` of ``audio_params['validation_csv']`` (see
    :func:`validation_stream`), one pass in batches of ``batch_size`` (default 8)."""
    batch_size = int(audio_params.get("batch_size", DEFAULT_BATCH_SIZE))
    stream = validation_stream(audio_params, audio_adapter, audio_path)
    return stream.dataset(batch_size, 0, len(stream), DEFAULT_WORKERS)
