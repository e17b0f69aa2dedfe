"""The tracks of a MUSDB-layout dataset: discovery, mixtures, references and estimates.

Two layouts are recognised under ``<root>/test`` (both may be mixed):

* WAV (MUSDB18-HQ, or ``musdb``'s decoded layout, what upstream evaluated):
  ``test/<track>/mixture.wav`` with one ``<stem>.wav`` per source next to it;
* stems (MUSDB18): ``test/<track>.stem.mp4`` with the streams mixture, drums, bass, other,
  vocals (MUSDB's stream order), decoded with ``stempeg`` as ``musdb`` decodes them.

References are read as ``musdb`` reads them: float64, samples first, native sample rate
(``musdb`` reads WAV files through ffmpeg as 16-bit; MUSDB's WAV files are 16-bit, so both give
the same numbers). ``accompaniment`` is the ``accompaniment`` stem when the track has one,
otherwise the sum of every stem but ``vocals`` (for MUSDB: bass + drums + other, musdb's
definition). Any other instrument needs a stem of its own name.
"""

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import SpleeterError
from ..audio.adapter import AudioAdapter
from . import EVALUATION_MIXTURE, EVALUATION_SPLIT

STEM_SUFFIX = ".stem.mp4"
"""File name ending of a track in the stems layout."""

STEM_STREAMS: dict[str, int] = {"mixture": 0, "drums": 1, "bass": 2, "other": 3, "vocals": 4}
"""Stream index of each source in a MUSDB ``.stem.mp4`` file."""

ACCOMPANIMENT = "accompaniment"
"""The derived target: everything but the vocals."""

WAV_LAYOUT = "wav"
STEM_LAYOUT = "stem"


@dataclass(frozen=True)
class Track:
    """One track of the evaluated subset."""

    name: str
    """Track name (folder name, or file name without ``.stem.mp4``)."""
    path: Path
    """The track's folder (WAV layout) or ``.stem.mp4`` file (stems layout)."""
    layout: str
    """``wav`` or ``stem``."""

    @property
    def mixture_path(self) -> Path:
        """The file that holds the mixture."""
        return self.path / EVALUATION_MIXTURE if self.layout == WAV_LAYOUT else self.path

    def stems(self) -> list[str]:
        """The names of the track's source stems (mixture excluded), sorted."""
        if self.layout == STEM_LAYOUT:
            return sorted(name for name in STEM_STREAMS if name != "mixture")
        return sorted(
            entry.stem
            for entry in self.path.glob("*.wav")
            if entry.name != EVALUATION_MIXTURE and not entry.name.startswith(".")
        )

    def missing_reference(self, instrument: str) -> str | None:
        """Why ``instrument`` has no reference in this track, or None if it has one."""
        stems = self.stems()
        if instrument in stems:
            return None
        if instrument == ACCOMPANIMENT and any(stem != "vocals" for stem in stems):
            return None
        if self.layout == STEM_LAYOUT:
            return f"a MUSDB stem file only holds {', '.join(stems)} (and accompaniment)"
        return f"{self.path / (instrument + '.wav')} not found"

    def load_mixture(self, adapter: AudioAdapter, sample_rate: int) -> np.ndarray:
        """The mixture as float32 ``(n_samples, n_channels)`` at ``sample_rate``, whole track."""
        if self.layout == WAV_LAYOUT:
            waveform, _ = adapter.load(
                str(self.mixture_path), offset=0, duration=None, sample_rate=sample_rate
            )
            return waveform
        audio, rate = _read_stem(self.path, STEM_STREAMS["mixture"])
        if rate != sample_rate:
            raise SpleeterError(
                f"{self.path}: sampled at {rate} Hz, the model works at {sample_rate} Hz"
            )
        return audio.astype(np.float32)

    def load_references(self, instruments: list[str]) -> tuple[dict[str, np.ndarray], int]:
        """``({instrument: float64 (n_samples, n_channels)}, sample_rate)``.

        Raises:
            SpleeterError: a reference is missing or unreadable, or stems differ in rate.
        """
        cache: dict[str, tuple[np.ndarray, int]] = {}

        def stem(name: str) -> np.ndarray:
            if name not in cache:
                cache[name] = self._read(name)
            return cache[name][0]

        stems = self.stems()
        references: dict[str, np.ndarray] = {}
        for instrument in instruments:
            reason = self.missing_reference(instrument)
            if reason is not None:
                raise SpleeterError(f"Track {self.name}: no reference for {instrument} ({reason})")
            if instrument in stems:
                references[instrument] = stem(instrument)
            else:
                parts = [stem(name) for name in stems if name != "vocals"]
                references[instrument] = np.sum(np.array(parts), axis=0)
        rates = {rate for _, rate in cache.values()}
        if len(rates) > 1:
            raise SpleeterError(f"Track {self.name}: stems have different sample rates {rates}")
        return references, rates.pop()

    def _read(self, name: str) -> tuple[np.ndarray, int]:
        if self.layout == STEM_LAYOUT:
            return _read_stem(self.path, STEM_STREAMS[name])
        return read_wav(self.path / f"{name}.wav")


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """A WAV file as float64 ``(n_samples, n_channels)`` and its rate (as museval reads it)."""
    import soundfile

    try:
        audio, rate = soundfile.read(str(path), always_2d=True, dtype="float64")
    except (OSError, RuntimeError) as error:
        raise SpleeterError(f"{path}: cannot read ({error})") from error
    return audio, int(rate)


def _read_stem(path: Path, stream: int) -> tuple[np.ndarray, int]:
    """One stream of a ``.stem.mp4`` file as float64, decoded as ``musdb`` does (16-bit)."""
    try:
        import stempeg
    except ImportError as error:
        raise SpleeterError(
            f"{path}: reading .stem.mp4 files needs stempeg (pip install stempeg) and ffmpeg"
        ) from error
    try:
        audio, rate = stempeg.read_stems(str(path), stem_id=stream, ffmpeg_format="s16le")
    except Exception as error:  # stempeg raises assorted errors for unreadable files
        raise SpleeterError(f"{path}: cannot read stream {stream} ({error})") from error
    return np.asarray(audio, dtype=np.float64), int(rate)


def find_tracks(root: str | os.PathLike, subset: str = EVALUATION_SPLIT) -> list[Track]:
    """The tracks of ``root/subset``, sorted by name.

    Raises:
        SpleeterError: ``root`` is not a directory, or holds no track in either layout.
    """
    base = Path(root)
    if not base.is_dir():
        raise SpleeterError(f"MUSDB directory {root} not found (--mus_dir)")
    folder = base / subset
    tracks: dict[str, Track] = {}
    if folder.is_dir():
        for entry in folder.iterdir():
            if entry.name.startswith("."):
                continue
            if entry.is_dir() and (entry / EVALUATION_MIXTURE).is_file():
                tracks[entry.name] = Track(entry.name, entry, WAV_LAYOUT)
        for entry in folder.iterdir():
            name = entry.name.removesuffix(STEM_SUFFIX)
            if entry.name.endswith(STEM_SUFFIX) and entry.is_file() and name not in tracks:
                tracks[name] = Track(name, entry, STEM_LAYOUT)
    if not tracks:
        raise SpleeterError(
            f"No {subset} track found in {root}: expected {subset}/<track>/{EVALUATION_MIXTURE} "
            f"(WAV layout) or {subset}/<track>{STEM_SUFFIX} (MUSDB18 stems)"
        )
    return [tracks[name] for name in sorted(tracks)]


def check_references(tracks: list[Track], instruments: list[str]) -> None:
    """Raise a one-line error if a track lacks the reference of an instrument."""
    for track in tracks:
        for instrument in instruments:
            reason = track.missing_reference(instrument)
            if reason is not None:
                raise SpleeterError(
                    f"Track {track.name}: no reference for {instrument} ({reason}); the model's "
                    f"instruments ({', '.join(instruments)}) must all be stems of the dataset"
                )


def load_estimates(directory: Path, instruments: list[str]) -> tuple[dict[str, np.ndarray], int]:
    """The separated ``<directory>/<instrument>.wav`` files, as museval reads them."""
    estimates: dict[str, np.ndarray] = {}
    rates = set()
    for instrument in instruments:
        path = directory / f"{instrument}.wav"
        if not path.is_file():
            raise SpleeterError(f"Separated file {path} not found")
        estimates[instrument], rate = read_wav(path)
        rates.add(rate)
    if len(rates) != 1:
        raise SpleeterError(f"{directory}: separated files have different sample rates {rates}")
    return estimates, rates.pop()
