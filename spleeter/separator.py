"""The separation API: ``Separator(config).separate(waveform)`` and ``separate_to_file(path, dir)``.

Example::

    >>> from spleeter.separator import Separator
    >>> separator = Separator("spleeter:2stems")
    >>> sources = separator.separate(waveform)          # {"vocals": (n, 2), "accompaniment": ...}
    >>> separator.separate_to_file("song.mp3", "out")   # out/song/vocals.wav, ...

One model is loaded on first use and kept for every later call (upstream rebuilt its graph and
restored its checkpoint on each ``separate``).
"""

import os
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from os.path import basename, dirname, join, splitext
from typing import Any

import numpy as np

from . import SpleeterError
from .audio import Codec
from .audio.adapter import AudioAdapter
from .audio.convertor import to_stereo
from .audio.encoding import ClippingWriter, OutputFormat
from .audio.spectrogram import prepare_fft
from .audio.streams import ArrayReader, AudioReader, AudioWriter
from .engines import Engine, create_engine
from .model.checks import checked_configuration
from .model.provider import ModelProvider
from .separation import separation_family
from .separation.pipeline import DEFAULT_SEGMENT_BLOCKS, SeparationPipeline
from .separation.selection import StemSelection
from .separation.shifts import AveragedPipeline
from .types import AudioDescriptor
from .utils.configuration import SIGNAL_KEYS
from .utils.logging import logger

DEFAULT_FILENAME_FORMAT = "{filename}/{instrument}.{codec}"
SEPARATION_KEYS = ("model_dir", *SIGNAL_KEYS, "separation_exponent", "mask_extension", "model")
"""Configuration keys that separation reads (their schema: :mod:`spleeter.utils.schema`)."""


class Separator:
    """Separates waveforms into the instruments of a configuration.

    Args:
        params_descriptor: ``spleeter:NAME`` (``2stems``, ``4stems``, ``5stems`` and their
            ``-16kHz`` variants) or the path of a JSON configuration.
        MWF: use the multichannel Wiener filter instead of ratio masks.
        multiprocess: write output files in the background (``join()`` waits for them).
        segment_blocks: blocks of ``T`` frames separated at a time (memory is bounded by the
            segment, not the input); ``None`` separates in one piece. Same result either way.
        engine: ``auto`` (ONNX Runtime; U-Nets converted from their checkpoint on first use,
            other networks on TensorFlow until exported), ``onnx`` (ONNX Runtime, exporting any
            model once), ``openvino`` (OpenVINO on the CPU) or ``tensorflow``.
        device: ``cpu``, ``cuda`` (an error where it cannot run) or ``auto``.
        precision: the network's arithmetic: ``float32`` (upstream's numbers), ``bfloat16``,
            ``float16`` or ``int8`` (see :func:`spleeter.engines.create_engine`).
        shifts: average this many separations of the input delayed at random by up to 0.5 s
            (Demucs' ``--shifts``; 1: one plain separation, as upstream).
        overlap: also separate with the ``T``-frame block grid moved, crossfading the grids
            (``ceil(1 / (1 - overlap))`` of them; 0: upstream's single grid).
        clusterer, clusters, seed: the cluster family's options (``kmeans``, ``agglomerative``
            or ``dbscan``; ``K``, 0 to estimate it; the clustering seed), None: the
            configuration's.
        split: ``{stem: K}``: split those stems of the model further into ``K`` clusters each
            (``other_1 .. other_K``; 0 estimates ``K``) with the cluster model ``split_model``.
    """

    def __init__(
        self,
        params_descriptor: str,
        MWF: bool = False,
        multiprocess: bool = True,
        segment_blocks: int | None = DEFAULT_SEGMENT_BLOCKS,
        engine: str = "auto",
        device: str = "auto",
        *,
        precision: str = "float32",
        shifts: int = 1,
        overlap: float = 0.0,
        clusterer: str | None = None,
        clusters: int | None = None,
        seed: int | None = None,
        split: Mapping[str, int] | None = None,
        split_model: str = "spleeter:4stems-cluster",
    ) -> None:
        self._params = checked_configuration(params_descriptor, "separate")
        self._params_descriptor = params_descriptor
        self._sample_rate = self._params["sample_rate"]
        self._MWF = MWF
        self._params["MWF"] = MWF
        self._engine: Engine | None = None
        self._engine_choice = (engine, device, precision)
        prepare_fft()  # imported while the caller decodes and the network loads
        cluster_options = {"clusterer": clusterer, "clusters": clusters, "seed": seed}
        if split:
            from .separation.cluster import split_family

            self._family = split_family(
                separation_family(self._params, self._get_engine, mwf=MWF),
                split,
                split_model,
                cluster_options,
            )
        else:
            self._family = separation_family(
                self._params, self._get_engine, mwf=MWF, **cluster_options
            )
        self._pipeline: SeparationPipeline | AveragedPipeline = SeparationPipeline(
            self._params, self._family, segment_blocks
        )
        if shifts != 1 or overlap:
            self._pipeline = AveragedPipeline(self._pipeline, self.sample_rate, shifts, overlap)
        self._pool: ThreadPoolExecutor | None = (
            ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 1)) if multiprocess else None
        )
        self._tasks: list[Future] = []

    @property
    def instruments(self) -> list[str]:
        """The sources every separation gives, in output order (the configuration's
        instruments), or an empty list when the model decides them per track."""
        return list(self._family.declared_sources() or [])

    @property
    def named_sources(self) -> bool:
        """Whether the sources are named after the dataset's stems (False for clusters, whose
        ``source_k`` evaluation matches to stems by content)."""
        return bool(self._family.named_sources)

    @property
    def sample_rate(self) -> int:
        """The sample rate the model works at; inputs must be at this rate."""
        return int(self._sample_rate)

    def load(self) -> Engine:
        """Resolve (or download) the model and load it now rather than on first use."""
        load = getattr(self._family, "load", None)
        if load is not None:  # a family that runs its own network (the cluster family)
            return load()
        return self._get_engine()

    def _get_engine(self) -> Engine:
        """Resolve (or download) the model directory and load the model, once."""
        if self._engine is None:
            model_dir = ModelProvider.default().get(
                self._params["model_dir"], unpublished=self._params.get("model_unpublished")
            )
            self._params["model_dir"] = model_dir
            self._engine = create_engine(self._params, model_dir, *self._engine_choice)
        return self._engine

    def separate(
        self,
        waveform: np.ndarray,
        audio_descriptor: str | None = "",
        *,
        stems: list[str] | None = None,
        two_stems: str | None = None,
    ) -> dict:
        """Separate a waveform ``(n_samples, n_channels)`` sampled at the configuration's rate.

        Mono input is duplicated to stereo and only the first two of more channels are used.
        ``stems`` keeps only those sources; ``two_stems="vocals"`` gives ``vocals`` and
        ``no_vocals`` (the sum of the other sources).

        Returns:
            ``{instrument: float32 array (n_samples, 2)}`` in the configuration's order.
        """
        waveform = _as_waveform(waveform, audio_descriptor)
        self._check_channels()
        selection = StemSelection.of(stems, two_stems)

        def reread() -> Callable[[int], np.ndarray]:
            return ArrayReader(waveform, self.sample_rate).read

        separation = self._pipeline.run(reread(), reread)
        outputs = selection.outputs(separation.sources)
        pieces: dict[str, list[np.ndarray]] = {name: [] for name in outputs}
        for separated in selection.stream(separation.pieces):
            for name, piece in separated.items():
                pieces[name].append(piece)
        return {name: np.concatenate(parts) for name, parts in pieces.items()}

    def _check_channels(self) -> None:
        if self._params["n_channels"] != 2:
            raise SpleeterError(
                f"Configuration {self._params_descriptor}: separation needs n_channels = 2 "
                f"(got {self._params['n_channels']})"
            )

    def separate_to_file(
        self,
        audio_descriptor: AudioDescriptor,
        destination: str,
        audio_adapter: AudioAdapter | None = None,
        offset: float = 0,
        duration: float | None = 600.0,
        codec: Codec = Codec.WAV,
        bitrate: str = "128k",
        filename_format: str = DEFAULT_FILENAME_FORMAT,
        synchronous: bool = True,
        progress: Callable[[int], None] | None = None,
        *,
        stems: list[str] | None = None,
        two_stems: str | None = None,
        output_format: OutputFormat | None = None,
    ) -> None:
        """Load ``audio_descriptor``, separate it and write one file per instrument.

        Output paths are ``destination/filename_format`` with ``{filename}``, ``{foldername}``,
        ``{instrument}`` and ``{codec}`` filled in. A file's stems are written all together or
        not at all. The input is decoded, separated and encoded a segment at a time, so memory
        does not grow with its length; ``duration=None`` separates the whole file. ``progress``
        is called with the number of samples written after each segment. (``synchronous`` is
        kept for compatibility: the files are complete when this returns.) ``stems`` and
        ``two_stems`` choose the sources written (see :meth:`separate`), ``output_format`` their
        bit depth, sample rate and clipping (default: upstream's 16-bit WAV, clamped).
        """
        if audio_adapter is None:
            audio_adapter = AudioAdapter.default()
        selection = StemSelection.of(stems, two_stems)
        instruments = selection.outputs(self.instruments) if self.instruments else None
        paths = self.output_paths(
            audio_descriptor, destination, filename_format, codec, instruments=instruments
        )
        self._check_channels()
        with audio_adapter.open_reader(
            audio_descriptor, offset=offset, duration=duration, sample_rate=self._sample_rate
        ) as reader:
            self.separate_reader(
                reader,
                paths,
                codec,
                audio_adapter,
                bitrate,
                progress,
                reopen=lambda: audio_adapter.open_reader(
                    audio_descriptor,
                    offset=offset,
                    duration=duration,
                    sample_rate=self._sample_rate,
                ),
                stems=stems,
                two_stems=two_stems,
                output_format=output_format,
            )
        del synchronous  # files are complete when this returns (encoded while separating)

    def separate_reader(
        self,
        reader: AudioReader,
        paths: Mapping[str, str] | Callable[[list[str]], Mapping[str, str]],
        codec: Codec = Codec.WAV,
        audio_adapter: AudioAdapter | None = None,
        bitrate: str = "128k",
        progress: Callable[[int], None] | None = None,
        reopen: Callable[[], AudioReader] | None = None,
        *,
        stems: list[str] | None = None,
        two_stems: str | None = None,
        output_format: OutputFormat | None = None,
    ) -> None:
        """Separate an open reader's samples segment by segment straight into the files
        ``paths`` (``{source: path}``, see :meth:`output_paths`), all or none of them.

        ``paths`` may also be a function of the track's sources, for models that decide them
        per track: it is called once they are known, before any file is opened. ``reopen``
        gives a new reader over the same input: it lets a two-pass separation (``MWF``) run
        both passes in bounded memory (without it, the input is held whole). ``stems``,
        ``two_stems`` and ``output_format``: as for :meth:`separate_to_file`.
        """
        self._check_channels()
        audio_adapter = audio_adapter or AudioAdapter.default()
        selection = StemSelection.of(stems, two_stems)
        output_format = output_format or OutputFormat()
        output_format.check(codec)
        with ExitStack() as stack:

            def reread() -> Callable[[int], np.ndarray]:
                return _stereo(stack.enter_context(reopen()))  # type: ignore[misc]

            separation = self._pipeline.run(_stereo(reader), reread if reopen else None)
            sources = selection.outputs(separation.sources)
            targets = dict(paths(sources) if callable(paths) else paths)
            unplaced = [name for name in sources if name not in targets]
            if unplaced:
                raise SpleeterError(f"No output path for source(s) {', '.join(unplaced)}")
            targets = {name: targets[name] for name in sources}
            with _OutputGroup(
                targets, audio_adapter, self._sample_rate, codec, bitrate, output_format
            ) as outputs:
                for separated in selection.stream(separation.pieces):
                    outputs.write(separated)
                    if progress is not None:
                        progress(next(iter(separated.values())).shape[0])

    def save_to_file(
        self,
        sources: dict,
        audio_descriptor: AudioDescriptor,
        destination: str,
        filename_format: str = DEFAULT_FILENAME_FORMAT,
        codec: Codec = Codec.WAV,
        audio_adapter: AudioAdapter | None = None,
        bitrate: str = "128k",
        synchronous: bool = True,
    ) -> None:
        """Write separated ``sources`` (as returned by :meth:`separate`) to files."""
        if audio_adapter is None:
            audio_adapter = AudioAdapter.default()
        paths = self.output_paths(
            audio_descriptor, destination, filename_format, codec, instruments=list(sources)
        )
        self._submit(sources, paths, codec, audio_adapter, bitrate, synchronous)

    def output_paths(
        self,
        audio_descriptor: AudioDescriptor,
        destination: str,
        filename_format: str = DEFAULT_FILENAME_FORMAT,
        codec: Codec = Codec.WAV,
        instruments: list[str] | None = None,
    ) -> dict[str, str]:
        """The file each instrument of ``audio_descriptor`` is written to.

        Raises:
            SpleeterError: unknown placeholder in ``filename_format``, or two instruments
                would be written to the same path.
        """
        descriptor = os.fsdecode(audio_descriptor)
        fields = {
            "filename": splitext(basename(descriptor))[0],
            "foldername": basename(dirname(descriptor)),
            "codec": str(codec),
        }
        paths: dict[str, str] = {}
        for instrument in instruments or self.instruments:
            try:
                relative = filename_format.format(instrument=instrument, **fields)
            except (KeyError, IndexError, ValueError) as error:
                raise SpleeterError(
                    f"Invalid filename format {filename_format!r} ({error!r}): use "
                    "{filename}, {foldername}, {instrument} and {codec}"
                ) from error
            path = join(destination, relative)
            if path in paths.values():
                raise SpleeterError(
                    f"Separated source path conflict: {path}, please check your filename format"
                )
            paths[instrument] = path
        return paths

    def _submit(
        self,
        sources: dict,
        paths: dict[str, str],
        codec: Codec,
        audio_adapter: AudioAdapter,
        bitrate: str,
        synchronous: bool,
    ) -> None:
        arguments = (sources, paths, codec, audio_adapter, bitrate)
        if self._pool is None:
            self._write(*arguments)
            return
        self._tasks.append(self._pool.submit(self._write, *arguments))
        if synchronous:
            self.join()

    def _write(
        self,
        sources: dict,
        paths: dict[str, str],
        codec: Codec,
        audio_adapter: AudioAdapter,
        bitrate: str,
    ) -> None:
        """Write in-memory ``sources``: every stem, or none of them."""
        with _OutputGroup(paths, audio_adapter, self._sample_rate, codec, bitrate) as outputs:
            outputs.write({name: sources[name] for name in paths})

    def join(self, timeout: int = 200) -> None:
        """Wait for the background writes; re-raise the first failure once all are done."""
        failures: list[BaseException] = []
        while self._tasks:
            task = self._tasks.pop(0)
            error = task.exception(timeout=timeout)
            if error is not None:
                failures.append(error)
        for error in failures[1:]:
            logger.error(str(error))
        if failures:
            raise failures[0]

    def __del__(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=True)


class _OutputGroup:
    """The files of one input's stems, published together once all are complete, or not at all.

    Missing directories are created, and removed again if the group fails.
    """

    def __init__(
        self,
        paths: dict[str, str],
        adapter: AudioAdapter,
        sample_rate: int,
        codec: Codec,
        bitrate: str | None,
        output_format: OutputFormat | None = None,
    ) -> None:
        self._paths = paths
        self._arguments = (adapter, sample_rate, codec, bitrate)
        self._format = output_format or OutputFormat()
        self._writers: dict[str, AudioWriter] = {}
        self._created: list[str] = []

    def __enter__(self) -> "_OutputGroup":
        adapter, sample_rate, codec, bitrate = self._arguments
        try:
            for instrument, path in self._paths.items():
                self._created += _make_parents(dirname(path) or ".")
                self._writers[instrument] = ClippingWriter(
                    _open_writer(adapter, path, sample_rate, codec, bitrate, self._format),
                    self._format.clip_mode,
                )
        except BaseException:
            self._abort()
            raise
        return self

    def write(self, pieces: dict[str, np.ndarray]) -> None:
        for instrument, piece in pieces.items():
            self._writers[instrument].write(piece)

    def __exit__(self, error_type: Any, *_: Any) -> None:
        if error_type is not None:
            self._abort()
            return
        try:
            for writer in self._writers.values():
                writer.finish()
            for writer in self._writers.values():
                writer.commit()
        except BaseException:
            self._abort()
            raise
        for path in self._paths.values():
            logger.info(f"File {path} written succesfully")

    def _abort(self) -> None:
        for writer in self._writers.values():
            writer.abort()
        for directory in reversed(self._created):
            try:
                os.rmdir(directory)
            except OSError:
                break


def _open_writer(
    adapter: AudioAdapter,
    path: str,
    sample_rate: int,
    codec: Codec,
    bitrate: str | None,
    output_format: OutputFormat,
) -> AudioWriter:
    """The adapter's writer for ``path``, told the non-default parts of ``output_format`` (an
    adapter whose ``open_writer`` cannot take them is refused in one line)."""
    options = output_format.encoder_options
    if not options:
        return adapter.open_writer(path, sample_rate, 2, codec, bitrate)
    import inspect

    accepted = inspect.signature(adapter.open_writer).parameters
    refused = [name for name in options if name not in accepted]
    if refused:
        raise SpleeterError(
            f"audio adapter {type(adapter).__name__} cannot write {', '.join(refused)} "
            "(--int24/--float32/--sample-rate need the ffmpeg adapter)"
        )
    return adapter.open_writer(path, sample_rate, 2, codec, bitrate, **options)  # type: ignore[call-arg]


def _stereo(reader: AudioReader) -> Callable[[int], np.ndarray]:
    """``reader.read`` with mono duplicated and extra channels dropped."""

    def read(n_samples: int) -> np.ndarray:
        chunk = reader.read(n_samples)
        return chunk if chunk.shape[1] == 2 else to_stereo(chunk)

    return read


def _as_waveform(waveform: Any, audio_descriptor: str | None) -> np.ndarray:
    """Validate a waveform and return it as a float32 stereo ``(n, 2)`` array."""
    name = f" of {audio_descriptor}" if audio_descriptor else ""
    array = np.asarray(waveform)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[1] == 0:
        raise SpleeterError(
            f"Waveform{name} must be an array (n_samples, n_channels), got shape {array.shape}"
        )
    if array.shape[0] == 0:
        raise SpleeterError(f"Waveform{name} is empty (no samples)")
    if not np.issubdtype(array.dtype, np.floating):
        raise SpleeterError(f"Waveform{name} must hold floating point samples, got {array.dtype}")
    return to_stereo(array.astype(np.float32, copy=False))


def _make_parents(directory: str) -> list[str]:
    """Create ``directory`` and its missing parents; return the ones created, outermost first."""
    missing = []
    current = os.path.abspath(directory)
    while not os.path.exists(current):
        missing.append(current)
        current = dirname(current)
    for path in reversed(missing):
        os.mkdir(path)
    return list(reversed(missing))
