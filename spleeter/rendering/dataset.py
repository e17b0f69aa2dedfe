"""Render a whole dataset: songs in MUSDB layout, upstream-format CSVs and a manifest.

Layout under ``root``::

    train/<Song>/{mixture,vocals,drums,bass,other[,piano]}.wav   (train and validation songs)
    test/<Song>/...                                               (test songs)
    train.csv, validation.csv, test.csv                           (upstream columns)
    dataset.json                                                  (how every song was made)

WAV files are 32-bit float, stereo, 44.1 kHz, written by :func:`write_wav` (no time stamps),
so the same seed and arguments give byte-identical files. Song ``i`` depends only on the seed
and ``i``: a larger ``n_songs`` adds songs without changing the first ones (their split may
change, as splits are drawn over the whole set).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import SpleeterError
from .arrange import ROLES, arrange
from .mixing import mix
from .scores import CORPUS_SOURCES, UnusablePiece, candidate_pieces, load_piece
from .synth import SAMPLE_RATE, find_fluidsynth, find_soundfont, fluidsynth_version, render_roles

STEMS = {4: ("vocals", "drums", "bass", "other"), 5: ("vocals", "drums", "bass", "other", "piano")}
"""Stem names per stem count, in upstream's CSV column order."""

SOURCE_WEIGHTS = {"bach": 0.6, "palestrina": 0.25, "monteverdi": 0.15}
"""How often each corpus source is drawn."""

DEFAULT_SPLITS = {"train": 0.7, "validation": 0.1, "test": 0.2}
MANIFEST = "dataset.json"
FORMAT_VERSION = 1

Duration = float | tuple[float, float]


@dataclass(frozen=True)
class SongPlan:
    """What to render for song ``index``: its piece, split, folder and length."""

    index: int
    piece: str
    split: str
    name: str
    duration: float

    @property
    def folder(self) -> str:
        return "test" if self.split == "test" else "train"


def write_wav(path: Path, audio: np.ndarray) -> None:
    """Write float32 ``(n, channels)`` audio as a WAVE_FORMAT_IEEE_FLOAT file (deterministic)."""
    data = np.ascontiguousarray(audio, dtype="<f4")
    channels = data.shape[1]
    fmt = (3).to_bytes(2, "little") + channels.to_bytes(2, "little")
    fmt += SAMPLE_RATE.to_bytes(4, "little") + (SAMPLE_RATE * 4 * channels).to_bytes(4, "little")
    fmt += (
        (4 * channels).to_bytes(2, "little")
        + (32).to_bytes(2, "little")
        + (0).to_bytes(2, "little")
    )
    fact = len(data).to_bytes(4, "little")
    payload = data.tobytes()
    body = b"WAVE" + b"fmt " + len(fmt).to_bytes(4, "little") + fmt
    body += b"fact" + (4).to_bytes(4, "little") + fact
    body += b"data" + len(payload).to_bytes(4, "little") + payload
    path.write_bytes(b"RIFF" + len(body).to_bytes(4, "little") + body)


def _song_rngs(seed: int, index: int) -> list[np.random.Generator]:
    """Independent generators for one song: plan, arrangement, mix."""
    children = np.random.SeedSequence([seed, index]).spawn(3)
    return [np.random.default_rng(child) for child in children]


def _split_counts(n_songs: int, splits: dict[str, float]) -> dict[str, int]:
    """Songs per split: at least one for each split with a positive fraction, train keeps >= 1."""
    counts = {}
    for name, fraction in splits.items():
        if name == "train":
            continue
        count = round(n_songs * fraction)
        counts[name] = max(1, count) if fraction > 0 else 0
    while sum(counts.values()) > n_songs - 1 and any(counts.values()):
        largest = max(counts, key=lambda k: counts[k])
        counts[largest] -= 1
    counts["train"] = n_songs - sum(counts.values())
    return counts


def plan_songs(
    n_songs: int, seed: int, duration: Duration, splits: dict[str, float]
) -> list[SongPlan]:
    """Draw each song's piece (no repeats until a source runs out), length and split."""
    candidates = candidate_pieces()
    by_source = {s: [c for c in candidates if c.startswith(f"{s}/")] for s, _, _ in CORPUS_SOURCES}
    master = np.random.default_rng(seed)
    orders = {s: list(master.permutation(len(pieces))) for s, pieces in by_source.items()}
    used = dict.fromkeys(by_source, 0)
    counts = _split_counts(n_songs, splits)
    labels = [name for name, count in counts.items() for _ in range(count)]
    labels = [labels[i] for i in master.permutation(len(labels))]
    sources = [s for s in SOURCE_WEIGHTS if by_source.get(s)]
    weights = np.array([SOURCE_WEIGHTS[s] for s in sources])
    plans = []
    for index in range(n_songs):
        rng = _song_rngs(seed, index)[0]
        source = sources[int(rng.choice(len(sources), p=weights / weights.sum()))]
        order = orders[source]
        piece = by_source[source][order[used[source] % len(order)]]
        used[source] += 1
        if isinstance(duration, tuple):
            length = round(float(rng.uniform(*duration)), 2)
        else:
            length = float(duration)
        work = Path(piece).stem
        name = f"Rendered {seed}-{index:03d} - {source.title()} {work}"
        plans.append(SongPlan(index, piece, labels[index], name, length))
    return plans


def render_song(plan: SongPlan, seed: int, stems: int, root: Path, soundfont: Path) -> dict:
    """Render, mix and write one song; returns its manifest entry."""
    _, arrange_rng, mix_rng = _song_rngs(seed, plan.index)
    piece_name = plan.piece
    candidates = candidate_pieces()
    for _ in range(len(candidates)):
        try:
            piece = load_piece(piece_name)
            break
        except UnusablePiece:
            piece_name = candidates[int(arrange_rng.integers(len(candidates)))]
    else:  # pragma: no cover - the corpus always has usable pieces
        raise SpleeterError(f"no usable piece found for song {plan.index}")
    song = arrange(piece, plan.duration, arrange_rng)
    audio = render_roles({role: song.tracks[role] for role in ROLES}, plan.duration, soundfont)
    merge = {} if stems == 5 else {"piano": "other"}
    result = mix(audio, STEMS[stems], mix_rng, merge)
    folder = root / plan.folder / plan.name
    folder.mkdir(parents=True, exist_ok=True)
    write_wav(folder / "mixture.wav", result.mixture)
    for name, stem in result.stems.items():
        write_wav(folder / f"{name}.wav", stem)
    length = len(result.mixture)
    return {
        "index": plan.index,
        "name": plan.name,
        "split": plan.split,
        "folder": f"{plan.folder}/{plan.name}",
        "piece": piece_name,
        "replaced_piece": plan.piece if piece_name != plan.piece else None,
        "duration": length / SAMPLE_RATE,
        "samples": length,
        "tempo_bpm": song.tempo,
        "beat_quarters": song.beat,
        "key_shift": song.key_shift,
        "start_bar": song.start_bar,
        "stem_of_role": {role: merge.get(role, role) for role in ROLES},
        "roles": song.details,
        "gains_db": result.gains_db,
        "pans": result.pans,
        "stem_peaks_dbfs": {
            name: round(float(20 * np.log10(max(np.abs(s).max(), 1e-12))), 2)
            for name, s in {"mixture": result.mixture, **result.stems}.items()
        },
    }


def check_output(root: Path, force: bool) -> None:
    """Refuse a path that is not a directory, or a non-empty directory unless ``force``."""
    if root.exists() and not root.is_dir():
        raise SpleeterError(f"output path {root} exists and is not a directory")
    if root.is_dir() and any(root.iterdir()) and not force:
        raise SpleeterError(f"output directory {root} is not empty (use --force to overwrite)")


def prepare_output(root: Path, force: bool) -> None:
    """Create ``root``, refusing a non-empty one unless ``force`` (then clear a previous render).

    With ``force``, only what a previous render wrote (when ``dataset.json`` is there) is
    removed: ``train/``, ``test/``, the CSVs and the manifest; other files are left alone.
    """
    check_output(root, force)
    if (root / MANIFEST).is_file():
        for folder in ("train", "test"):
            shutil.rmtree(root / folder, ignore_errors=True)
        for file in (MANIFEST, "train.csv", "validation.csv", "test.csv"):
            (root / file).unlink(missing_ok=True)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SpleeterError(
            f"output directory {root} cannot be created: {error.strerror}"
        ) from None
    if not os.access(root, os.W_OK | os.X_OK):
        raise SpleeterError(f"output directory {root} is not writable")


def write_csvs(root: Path, entries: list[dict], stems: int, splits: dict[str, float]) -> None:
    """Write ``<split>.csv`` per split with upstream's columns and paths relative to ``root``."""
    names = STEMS[stems]
    header = ["mix_path", *(f"{n}_path" for n in names), "duration"]
    files = ["mixture", *names]
    for split in splits:
        with open(root / f"{split}.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(header)
            for entry in entries:
                if entry["split"] == split:
                    paths = [f"{entry['folder']}/{f}.wav" for f in files]
                    writer.writerow([*paths, f"{entry['duration']:.6f}"])


def _parse_splits(splits: dict[str, float] | None) -> dict[str, float]:
    splits = dict(DEFAULT_SPLITS if splits is None else splits)
    if "train" not in splits:
        splits = {"train": round(max(0.0, 1.0 - sum(splits.values())), 6)} | splits
    if (
        any(f < 0 for f in splits.values())
        or sum(v for k, v in splits.items() if k != "train") >= 1
    ):
        raise SpleeterError(f"split fractions must be >= 0 and leave songs to train: {splits}")
    return splits


def render_dataset(
    root: str | Path,
    n_songs: int,
    seed: int,
    duration: Duration = 30.0,
    stems: int = 4,
    splits: dict[str, float] | None = None,
    *,
    soundfont: str | Path | None = None,
    force: bool = False,
    jobs: int = 1,
    progress: bool = False,
) -> dict:
    """Render ``n_songs`` songs under ``root`` and return the manifest (also in dataset.json).

    ``duration`` is a song length in seconds or a ``(min, max)`` range drawn per song.
    ``splits`` maps ``train``/``validation``/``test`` to fractions of the songs (defaults
    0.7/0.1/0.2); validation songs live in ``train/`` as in MUSDB. ``jobs`` renders songs in
    parallel processes (the output does not depend on it). ``progress`` shows a tqdm bar.
    """
    if stems not in STEMS:
        raise SpleeterError(f"stems must be 4 or 5 (got {stems})")
    if seed < 0:
        raise SpleeterError(f"the seed must be >= 0 (got {seed})")
    if n_songs < 1:
        raise SpleeterError(f"the number of songs must be >= 1 (got {n_songs})")
    low, high = duration if isinstance(duration, tuple) else (duration, duration)
    if not 1.0 <= low <= high <= 600.0:
        raise SpleeterError(f"song durations must be within 1-600 s (got {duration})")
    splits = _parse_splits(splits)
    root = Path(root)
    check_output(root, force)
    binary = find_fluidsynth()
    font = find_soundfont(soundfont)
    plans = plan_songs(n_songs, seed, duration, splits)
    prepare_output(root, force)

    entries: list[dict] = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n_songs, unit="song", file=sys.stderr)
    arguments = [(plan, seed, stems, root, font) for plan in plans]
    try:
        if jobs > 1:
            with ProcessPoolExecutor(max_workers=jobs) as pool:
                for entry in pool.map(render_song, *zip(*arguments, strict=True)):
                    entries.append(entry)
                    if bar is not None:
                        bar.update()
        else:
            for args in arguments:
                entries.append(render_song(*args))
                if bar is not None:
                    bar.update()
    finally:
        if bar is not None:
            bar.close()

    import music21

    manifest = {
        "generator": "spleeter.rendering",
        "format_version": FORMAT_VERSION,
        "seed": seed,
        "n_songs": n_songs,
        "duration": list(duration) if isinstance(duration, tuple) else duration,
        "stems": list(STEMS[stems]),
        "splits": splits,
        "sample_rate": SAMPLE_RATE,
        "wav_format": "32-bit float, stereo; mixture = sum of the stems",
        "soundfont": {"file": font.name, "bytes": font.stat().st_size},
        "fluidsynth": fluidsynth_version(binary),
        "music21": music21.__version__,
        "songs": entries,
    }
    write_csvs(root, entries, stems, splits)
    text = json.dumps(manifest, indent=2, sort_keys=True, default=_json_default)
    (root / MANIFEST).write_text(text + "\n", encoding="utf-8")
    return manifest


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
