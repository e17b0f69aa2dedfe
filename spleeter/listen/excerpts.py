"""Finding the files of each item and picking the excerpt that is played.

A reference folder has the MUSDB layout ``<dir>/<track>/<stem>.wav``; a system folder has the
same layout, or is the output folder of ``spleeter evaluate`` (``<dir>/audio/test/<track>/``).
Every system file must have the reference's sample rate and length: an excerpt is cut at the
same samples everywhere, so switching between conditions keeps the music in time.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import SpleeterError
from ..evaluation import EVALUATION_AUDIO_DIRECTORY, EVALUATION_SPLIT

EXCERPT_STEP_SECONDS: float = 0.5
"""Grid on which excerpt starts are tried."""


@dataclass(frozen=True)
class Item:
    """One track and stem, with its reference file and each system's file."""

    track: str
    stem: str
    reference: Path
    systems: dict[str, Path]


def system_root(path: Path) -> Path:
    """The folder holding ``<track>/<stem>.wav`` for a system (an evaluate output is accepted)."""
    evaluated = path / EVALUATION_AUDIO_DIRECTORY / EVALUATION_SPLIT
    return evaluated if evaluated.is_dir() else path


def find_items(reference_dir: Path, systems: dict[str, Path], stems: list[str]) -> list[Item]:
    """Every (track, stem) of ``reference_dir`` with ``stems``, and each system's file for it.

    Raises a :class:`SpleeterError` naming every missing file.
    """
    reference_dir = Path(reference_dir)
    if not reference_dir.is_dir():
        raise SpleeterError(f"Reference folder {reference_dir} not found")
    roots = {}
    for name, path in systems.items():
        if not Path(path).is_dir():
            raise SpleeterError(f"Folder {path} of system {name} not found")
        roots[name] = system_root(Path(path))
    tracks = sorted(
        entry.name
        for entry in reference_dir.iterdir()
        if entry.is_dir() and any((entry / f"{stem}.wav").is_file() for stem in stems)
    )
    if not tracks:
        raise SpleeterError(
            f"No track in {reference_dir}: expected <track>/<stem>.wav for stems {stems}"
        )
    items, missing = [], []
    for track in tracks:
        for stem in stems:
            reference = reference_dir / track / f"{stem}.wav"
            files = {name: root / track / f"{stem}.wav" for name, root in roots.items()}
            missing += [str(p) for p in [reference, *files.values()] if not p.is_file()]
            items.append(Item(track, stem, reference, files))
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if missing[10:] else "")
        raise SpleeterError(f"Missing file(s): {shown}")
    return items


def read_audio(path: Path) -> tuple[np.ndarray, int]:
    """A WAV file as float32 ``(n, 2)`` (mono duplicated) and its sample rate."""
    import soundfile

    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except Exception as error:  # soundfile raises several types for unreadable files
        raise SpleeterError(f"Cannot read {path}: {error}") from None
    if data.shape[1] == 1:
        data = np.repeat(data, 2, axis=1)
    elif data.shape[1] != 2:
        raise SpleeterError(f"{path} has {data.shape[1]} channels: expected mono or stereo")
    return data, int(rate)


def load_item(item: Item) -> tuple[np.ndarray, dict[str, np.ndarray], int]:
    """The reference and every system's signal of ``item``, checked to match."""
    reference, rate = read_audio(item.reference)
    signals = {}
    for name, path in item.systems.items():
        signal, system_rate = read_audio(path)
        if system_rate != rate:
            raise SpleeterError(
                f"Sample rate mismatch: {path} ({name}) is at {system_rate} Hz, "
                f"reference {item.reference} at {rate} Hz"
            )
        if len(signal) != len(reference):
            raise SpleeterError(
                f"Length mismatch: {path} ({name}) has {len(signal)} samples, "
                f"reference {item.reference} has {len(reference)}"
            )
        signals[name] = signal
    return reference, signals, rate


def pick_excerpt(reference: np.ndarray, rate: int, duration: float) -> tuple[int, int]:
    """``(start, length)`` in samples of the loudest ``duration`` seconds of ``reference`` (by
    RMS, starts on a 0.5 s grid); the whole signal when it is shorter."""
    length = min(len(reference), int(round(duration * rate)))
    if length == len(reference):
        return 0, length
    power = np.concatenate([[0.0], np.cumsum(np.mean(reference.astype(float) ** 2, axis=1))])
    step = max(1, int(EXCERPT_STEP_SECONDS * rate))
    starts = np.arange(0, len(reference) - length + 1, step)
    energy = power[starts + length] - power[starts]
    return int(starts[int(np.argmax(energy))]), length
