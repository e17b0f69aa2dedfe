"""Multi-part pieces from the ``music21`` corpus, reduced to melody, bass and inner voices.

A :class:`Piece` is plain data (times in quarter notes, MIDI pitches), so the arranger never
touches ``music21`` objects. The candidate list is the sorted set of the corpus' Bach chorales,
Monteverdi madrigals and Palestrina mass movements: all vocal pieces for three or more voices in
one metre, whose top voice makes a singable melody and whose lowest voice makes a bass line.
A piece that cannot be used (parse error, fewer than three voices, changing metre...) raises
:class:`UnusablePiece` and the caller moves on to the next candidate.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

from .. import SpleeterError
from ..utils.extras import install_hint

CORPUS_SOURCES: tuple[tuple[str, str, str], ...] = (
    ("bach", "bwv", ".mxl"),
    ("monteverdi", "madrigal", ".mxl"),
    ("palestrina", "", ".krn"),
)
"""``(corpus folder, file name prefix, suffix)`` of the pieces the generator draws from."""

MAX_QUARTERS = 480.0
"""Only the first bars of long pieces are read (an excerpt is all a song uses)."""

Voice = tuple[tuple[float, float, int], ...]
"""Notes of one voice as ``(onset, duration, pitch)``, onsets and durations in quarter notes."""


class UnusablePiece(Exception):
    """A corpus piece that the arranger cannot use (the generator then tries the next one)."""


@dataclass(frozen=True)
class Piece:
    """A multi-part piece reduced to roles, with its metre.

    ``pickup`` is the offset of the first full bar (non-zero for an anacrusis); bars start at
    ``pickup + k * bar`` quarter notes. ``beat`` is the length of one counted beat in quarter
    notes (2 for 4/2, 1.5 for 6/8) and ``division`` the number of sub-beats in a beat.
    """

    name: str
    melody: Voice
    bass: Voice
    inner: tuple[Voice, ...]
    bar: float
    beat: float
    beats_per_bar: int
    division: int
    pickup: float
    length: float

    @property
    def voices(self) -> tuple[Voice, ...]:
        """Every voice, top to bottom."""
        return (self.melody, *self.inner, self.bass)


def _music21():
    try:
        import music21
    except ImportError as error:
        raise SpleeterError(
            f"music21 is not installed; install the render extra: {install_hint('render')}"
        ) from error
    return music21


@functools.cache
def candidate_pieces() -> tuple[str, ...]:
    """Corpus names (``folder/file`` with suffix) of every candidate piece, sorted."""
    music21 = _music21()
    root = Path(music21.corpus.__file__).parent
    names: list[str] = []
    for folder, prefix, suffix in CORPUS_SOURCES:
        for path in sorted((root / folder).glob(f"{prefix}*{suffix}")):
            names.append(f"{folder}/{path.name}")
    if not names:
        raise SpleeterError(f"no candidate pieces found in the music21 corpus at {root}")
    return tuple(names)


def _voice(part, melody: bool) -> Voice:
    """Notes of a music21 part; a melody keeps the top note of chords and never overlaps."""
    notes: list[tuple[float, float, int]] = []
    for element in part.stripTies().flatten().notes:
        start = float(element.offset)
        duration = float(element.duration.quarterLength)
        if duration <= 0 or start >= MAX_QUARTERS:
            continue
        pitches = sorted(p.midi for p in element.pitches)
        for pitch in pitches[-1:] if melody else pitches:
            notes.append((start, duration, int(pitch)))
    notes.sort()
    if melody:
        cleaned: list[tuple[float, float, int]] = []
        for start, duration, pitch in notes:
            if cleaned and cleaned[-1][0] == start:
                cleaned[-1] = (start, max(duration, cleaned[-1][1]), max(pitch, cleaned[-1][2]))
                continue
            if cleaned and cleaned[-1][0] + cleaned[-1][1] > start:
                prev = cleaned[-1]
                cleaned[-1] = (prev[0], start - prev[0], prev[2])
            cleaned.append((start, duration, pitch))
        notes = cleaned
    return tuple(notes)


def _ordered_parts(parts) -> list:
    """Parts top to bottom: by SATB names when the piece has them, else by score order."""
    ranks = {"soprano": 0, "canto": 0, "cantus": 0, "alto": 1, "quinto": 1, "tenor": 2}
    ranks |= {"bass": 3, "basso": 3, "bassus": 3}
    named = []
    for index, part in enumerate(parts):
        words = (part.partName or "").lower().split()
        rank = next((ranks[w] for w in words if w in ranks), None)
        named.append((rank, index, part))
    if sum(rank is not None for rank, _, _ in named) >= 3:
        ranked = sorted((rank, index, part) for rank, index, part in named if rank is not None)
        return [part for _, _, part in ranked]
    return list(parts)


@functools.lru_cache(maxsize=64)
def load_piece(name: str) -> Piece:
    """Parse corpus piece ``name`` into a :class:`Piece` (raises :class:`UnusablePiece`)."""
    music21 = _music21()
    try:
        score = music21.corpus.parse(name)
    except Exception as error:  # noqa: BLE001 - any parser failure makes the piece unusable
        raise UnusablePiece(f"{name}: cannot be parsed ({error})") from error
    parts = _ordered_parts(score.parts)
    if len(parts) < 3:
        raise UnusablePiece(f"{name}: fewer than three parts")
    signatures = {ts.ratioString for ts in score.recurse().getElementsByClass("TimeSignature")}
    if len(signatures) != 1:
        raise UnusablePiece(f"{name}: no single time signature ({sorted(signatures)})")
    signature = music21.meter.TimeSignature(signatures.pop())
    bar = float(signature.barDuration.quarterLength)
    beats = int(signature.beatCount)
    beat = bar / beats
    division = 3 if signature.beatDivisionCount == 3 else 2
    measures = list(parts[0].getElementsByClass("Measure"))
    pickup = 0.0
    if len(measures) > 1 and float(measures[0].duration.quarterLength) < bar - 1e-6:
        pickup = float(measures[1].offset)
    voices = [_voice(part, melody=(k == 0)) for k, part in enumerate(parts)]
    if any(len(v) < 8 for v in voices):
        raise UnusablePiece(f"{name}: a voice has fewer than 8 notes")
    length = min(float(score.highestTime), MAX_QUARTERS)
    if length < 4 * bar or not math.isfinite(length):
        raise UnusablePiece(f"{name}: shorter than four bars")
    return Piece(
        name=name,
        melody=voices[0],
        bass=voices[-1],
        inner=tuple(voices[1:-1]),
        bar=bar,
        beat=beat,
        beats_per_bar=beats,
        division=division,
        pickup=pickup,
        length=length,
    )
