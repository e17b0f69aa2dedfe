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
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from os.path import basename, dirname, join, splitext
from typing import Any

import numpy as np

from . import SpleeterError
from .audio import Codec
from .audio.adapter import AudioAdapter
from .audio.convertor import to_stereo
from .audio.spectrogram import istft, magnitude_blocks, stft, unblock
from .engines import Engine, create_engine
from .masking import extend_mask, ratio_masks, wiener_filter, zero_extend
from .model.provider import ModelProvider
from .types import AudioDescriptor
from .utils.configuration import load_configuration
from .utils.logging import logger

DEFAULT_FILENAME_FORMAT = "{filename}/{instrument}.{codec}"
SEPARATION_KEYS = (
    "model_dir",
    "mix_name",
    "instrument_list",
    "sample_rate",
    "frame_length",
    "frame_step",
    "T",
    "F",
    "n_channels",
    "separation_exponent",
    "mask_extension",
    "model",
)
"""Configuration keys that separation reads."""


class Separator:
    """Separates waveforms into the instruments of a configuration.

    Args:
        params_descriptor: ``spleeter:NAME`` (``2stems``, ``4stems``, ``5stems`` and their
            ``-16kHz`` variants) or the path of a JSON configuration.
        MWF: use the multichannel Wiener filter instead of ratio masks.
        multiprocess: write output files in the background (``join()`` waits for them).
    """

    def __init__(
        self, params_descriptor: str, MWF: bool = False, multiprocess: bool = True
    ) -> None:
        self._params = load_configuration(params_descriptor)
        missing = [key for key in SEPARATION_KEYS if key not in self._params]
        if missing:
            raise SpleeterError(
                f"Configuration {params_descriptor} lacks {', '.join(missing)} (needed to separate)"
            )
        self._params_descriptor = params_descriptor
        self._sample_rate = self._params["sample_rate"]
        self._MWF = MWF
        self._params["MWF"] = MWF
        self._engine: Engine | None = None
        self._pool: ThreadPoolExecutor | None = (
            ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 1)) if multiprocess else None
        )
        self._tasks: list[Future] = []

    @property
    def instruments(self) -> list[str]:
        """The configuration's instrument names, in output order."""
        return list(self._params["instrument_list"])

    @property
    def sample_rate(self) -> int:
        """The sample rate the model works at; inputs must be at this rate."""
        return int(self._sample_rate)

    def _get_engine(self) -> Engine:
        """Resolve (or download) the model directory and load the model, once."""
        if self._engine is None:
            model_dir = ModelProvider.default().get(self._params["model_dir"])
            self._params["model_dir"] = model_dir
            self._engine = create_engine(self._params, model_dir)
        return self._engine

    def separate(self, waveform: np.ndarray, audio_descriptor: str | None = "") -> dict:
        """Separate a waveform ``(n_samples, n_channels)`` sampled at the configuration's rate.

        Mono input is duplicated to stereo and only the first two of more channels are used.

        Returns:
            ``{instrument: float32 array (n_samples, 2)}`` in the configuration's order.
        """
        waveform = _as_waveform(waveform, audio_descriptor)
        params = self._params
        if params["n_channels"] != 2:
            raise SpleeterError(
                f"Configuration {self._params_descriptor}: separation needs n_channels = 2 "
                f"(got {params['n_channels']})"
            )
        frame_length, frame_step = params["frame_length"], params["frame_step"]
        spectrum = stft(waveform, frame_length, frame_step)
        n_frames, n_bins, _ = spectrum.shape
        blocks = magnitude_blocks(spectrum, params["T"], params["F"])
        estimates = self._get_engine()(blocks)
        names = [f"{instrument}_spectrogram" for instrument in self.instruments]
        if self._MWF:
            magnitudes = np.stack(
                [zero_extend(unblock(estimates[name], n_frames), n_bins) for name in names],
                axis=-1,
            )
            filtered = wiener_filter(magnitudes, spectrum)
            stfts = [filtered[..., k] for k in range(len(names))]
        else:
            masks = ratio_masks(estimates, params["separation_exponent"])
            stfts = [
                spectrum
                * extend_mask(unblock(masks[name], n_frames), n_bins, params["mask_extension"])
                for name in names
            ]
        return {
            instrument: istft(separated, frame_length, frame_step, waveform.shape[0])
            for instrument, separated in zip(self.instruments, stfts, strict=True)
        }

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
    ) -> None:
        """Load ``audio_descriptor``, separate it and write one file per instrument.

        Output paths are ``destination/filename_format`` with ``{filename}``, ``{foldername}``,
        ``{instrument}`` and ``{codec}`` filled in. A file's stems are written all together or
        not at all. With ``synchronous=False`` (and ``multiprocess``) the writing happens in the
        background: call :meth:`join`.
        """
        if audio_adapter is None:
            audio_adapter = AudioAdapter.default()
        paths = self.output_paths(audio_descriptor, destination, filename_format, codec)
        waveform, _ = audio_adapter.load(
            audio_descriptor, offset=offset, duration=duration, sample_rate=self._sample_rate
        )
        sources = self.separate(waveform, audio_descriptor)
        self._submit(sources, paths, codec, audio_adapter, bitrate, synchronous)

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
        """Write every stem to a temporary file, then rename them all into place."""
        created: list[str] = []
        staged: dict[str, str] = {}
        try:
            for instrument, path in paths.items():
                created += _make_parents(dirname(path) or ".")
                stem, extension = splitext(basename(path))
                temporary = join(dirname(path), f".{stem}.{uuid.uuid4().hex[:8]}.part{extension}")
                staged[temporary] = path
                try:
                    audio_adapter.save(
                        temporary, sources[instrument], self._sample_rate, codec, bitrate
                    )
                except SpleeterError as error:
                    raise SpleeterError(str(error).replace(temporary, path)) from error
            for temporary, path in staged.items():
                os.replace(temporary, path)
        except BaseException as error:
            for temporary in staged:
                if os.path.exists(temporary):
                    os.remove(temporary)
            for directory in reversed(created):
                try:
                    os.rmdir(directory)
                except OSError:
                    break
            if isinstance(error, OSError):
                raise SpleeterError(f"Cannot write {path}: {error.strerror or error}") from error
            raise
        for path in paths.values():
            logger.info(f"File {path} written succesfully")

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
