"""``spleeter listen prepare``: a self-contained test folder from references and separations.

For every track and stem: the loudest excerpt of the reference (about 10 s), the same samples of
each system, the hidden reference and the two low-pass anchors, all matched to one BS.1770
loudness, written as 24-bit WAV files under opaque names, and described in ``manifest.json``.
The first item is also the training trial (its own files and ids; its grades are discarded).
"""

import random
import re
import secrets
import shutil
from pathlib import Path

import numpy as np

from .. import SpleeterError
from ..utils.logging import logger
from . import AUDIO_DIRECTORY, MANIFEST_NAME, MAX_EXCERPT_SECONDS, MAX_SIGNALS
from .anchors import ANCHORS, AnchorSpec, lowpass
from .excerpts import Item, find_items, load_item, pick_excerpt
from .loudness import DEFAULT_TARGET_LUFS, matching_gains
from .manifest import HIDDEN_REFERENCE, Condition, Manifest, Trial

MIN_EXCERPT_SECONDS: float = 1.0
"""Shortest excerpt accepted (the loop region is at least 0.5 s)."""

SYSTEM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
RESERVED_NAMES = {HIDDEN_REFERENCE, *(spec.name for spec in ANCHORS)}


def parse_systems(values: list[str]) -> dict[str, Path]:
    """``NAME=DIR`` options as a mapping; a bad or repeated name is a :class:`SpleeterError`."""
    systems: dict[str, Path] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not path:
            raise SpleeterError(f"--system {value!r}: expected NAME=DIR")
        if not SYSTEM_NAME.match(name) or name in RESERVED_NAMES:
            raise SpleeterError(
                f"--system {value!r}: a name is letters, digits, '_', '-', '.' and not one of "
                f"{sorted(RESERVED_NAMES)}"
            )
        if name in systems:
            raise SpleeterError(f"--system {name} given twice")
        systems[name] = Path(path)
    return systems


def check_files(items: list[Item]) -> None:
    """Every system file has its reference's sample rate and length (checked from headers,
    before any work); raises a :class:`SpleeterError` naming the first that does not."""
    import soundfile

    def info(path: Path):
        try:
            return soundfile.info(str(path))
        except Exception as error:
            raise SpleeterError(f"Cannot read {path}: {error}") from None

    for item in items:
        reference = info(item.reference)
        for name, path in item.systems.items():
            system = info(path)
            if system.samplerate != reference.samplerate:
                raise SpleeterError(
                    f"Sample rate mismatch: {path} ({name}) is at {system.samplerate} Hz, "
                    f"reference {item.reference} at {reference.samplerate} Hz"
                )
            if system.frames != reference.frames:
                raise SpleeterError(
                    f"Length mismatch: {path} ({name}) has {system.frames} samples, "
                    f"reference {item.reference} has {reference.frames}"
                )


def _write(folder: Path, relative: str, signal: np.ndarray, rate: int) -> str:
    import soundfile

    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), signal, rate, subtype="PCM_24")
    return relative


def _make_trial(
    folder: Path,
    trial_id: str,
    item: Item,
    excerpt: tuple[int, int],
    signals: dict[str, tuple[str, np.ndarray]],
    reference: np.ndarray,
    rate: int,
    target: float,
    new_id,
) -> Trial:
    """Match loudness, write the files of one trial and describe it."""
    names = list(signals)
    gains, loudness = matching_gains(
        [reference] + [signals[n][1] for n in names], rate, target=target
    )
    directory = f"{AUDIO_DIRECTORY}/{trial_id}"
    reference_file = _write(folder, f"{directory}/reference.wav", reference * gains[0], rate)
    conditions = []
    for name, gain in zip(names, gains[1:], strict=True):
        kind, signal = signals[name]
        condition_id = new_id()
        file = _write(folder, f"{directory}/{condition_id}.wav", signal * gain, rate)
        conditions.append(Condition(condition_id, kind, name, file))
    start, length = excerpt
    return Trial(
        id=trial_id,
        track=item.track,
        stem=item.stem,
        start=round(start / rate, 6),
        duration=round(length / rate, 6),
        reference=reference_file,
        conditions=tuple(conditions),
        training=trial_id == "training",
        loudness=round(loudness, 3),
    )


def prepare_test(
    output: str | Path,
    reference_dir: str | Path,
    systems: dict[str, Path],
    stems: list[str],
    duration: float = 10.0,
    loudness: float = DEFAULT_TARGET_LUFS,
    seed: int | None = None,
) -> Manifest:
    """Write a MUSHRA test folder at ``output`` (new or empty) and return its manifest."""
    output = Path(output)
    if not systems:
        raise SpleeterError("No system to test: give at least one --system NAME=DIR")
    if not stems:
        raise SpleeterError("No stem to test: give --stems, e.g. vocals,drums")
    if not MIN_EXCERPT_SECONDS <= duration <= MAX_EXCERPT_SECONDS:
        raise SpleeterError(
            f"--duration {duration}: excerpts are {MIN_EXCERPT_SECONDS} to "
            f"{MAX_EXCERPT_SECONDS} s (BS.1534-3: about 10 s, at most 12 s)"
        )
    signals_per_trial = 1 + len(ANCHORS) + len(systems)
    if signals_per_trial > MAX_SIGNALS:
        raise SpleeterError(
            f"{len(systems)} systems make {signals_per_trial} signals per trial with the hidden "
            f"reference and {len(ANCHORS)} anchors; BS.1534-3 allows at most {MAX_SIGNALS}"
        )
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise SpleeterError(f"Output folder {output} exists and is not empty")
    items = find_items(Path(reference_dir), systems, stems)
    check_files(items)

    rng = random.Random(seed) if seed is not None else secrets.SystemRandom()
    used: set[str] = set()

    def new_id() -> str:
        while True:
            value = f"{rng.getrandbits(48):012x}"
            if value not in used:
                used.add(value)
                return value

    output.mkdir(parents=True, exist_ok=True)
    trials: list[Trial] = []
    rate = None
    try:
        for number, item in enumerate(items, start=1):
            reference_full, system_full, item_rate = load_item(item)
            if rate is not None and item_rate != rate:
                raise SpleeterError(
                    f"Sample rate mismatch: {item.reference} is at {item_rate} Hz, "
                    f"earlier references at {rate} Hz"
                )
            rate = item_rate
            start, length = pick_excerpt(reference_full, rate, duration)
            reference = reference_full[start : start + length]
            signals: dict[str, tuple[str, np.ndarray]] = {
                HIDDEN_REFERENCE: ("reference", reference)
            }
            for spec in ANCHORS:  # filtered over the whole track: no edge at the cut
                anchor = lowpass(reference_full, spec, rate)[start : start + length]
                signals[spec.name] = ("anchor", anchor)
            for name, signal in system_full.items():
                signals[name] = ("system", signal[start : start + length])
            ids = [f"t{number:02d}"] + (["training"] if number == 1 else [])
            for trial_id in ids:
                trials.append(
                    _make_trial(
                        output,
                        trial_id,
                        item,
                        (start, length),
                        signals,
                        reference,
                        rate,
                        loudness,
                        new_id,
                    )
                )
            logger.info(f"{item.track} / {item.stem}: excerpt at {start / rate:.1f} s")
    except BaseException:
        shutil.rmtree(output / AUDIO_DIRECTORY, ignore_errors=True)
        raise
    trials.sort(key=lambda t: (not t.training, t.id))
    manifest = Manifest(
        sample_rate=int(rate),
        systems=tuple(systems),
        stems=tuple(stems),
        trials=tuple(trials),
        anchors={spec.name: _spec_text(spec) for spec in ANCHORS},
    )
    manifest.save(output)
    logger.info(
        f"Listening test written to {output}: {len(trials) - 1} trials + training, "
        f"{signals_per_trial} signals each ({output / MANIFEST_NAME})"
    )
    return manifest


def _spec_text(spec: AnchorSpec) -> str:
    return (
        f"low-pass {spec.passband_hz:.0f} Hz (ripple <= {spec.ripple_db} dB), >= 25 dB down "
        f"from {spec.stop25_hz:.0f} Hz, >= 50 dB from {spec.stop50_hz:.0f} Hz"
    )
