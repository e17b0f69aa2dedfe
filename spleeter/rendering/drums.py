"""Seeded drum parts on the General MIDI percussion channel, locked to a song's bar grid.

A song gets one groove (kick and snare placement, hi-hat or ride, swing, ghost notes, extra
percussion), varied bar to bar, with a fill in the last beats of every 4- or 8-bar phrase and a
crash on the next downbeat. Timing and velocity are humanised. Everything is drawn from the
``numpy`` generator passed in, so a seed gives the same part.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .instruments import DRUM_KITS, program_name
from .midi import DRUM_CHANNEL, Note, Track

KICK, SIDE_STICK, SNARE, CLAP, E_SNARE = 36, 37, 38, 39, 40
CLOSED_HAT, PEDAL_HAT, OPEN_HAT = 42, 44, 46
CRASH, CRASH_2, RIDE, TAMBOURINE, MARACAS = 49, 57, 51, 54, 70
TOMS = (50, 48, 47, 45, 43, 41)
"""High to low toms."""

HIT_SECONDS = 0.12
"""Length given to every drum note (General MIDI drums ignore note-off for most sounds)."""


@dataclass(frozen=True)
class Meter:
    """A song's metre in seconds: beats per bar, sub-beats per beat and the beat length."""

    beats_per_bar: int
    division: int
    beat_seconds: float

    @property
    def bar_seconds(self) -> float:
        return self.beats_per_bar * self.beat_seconds


@dataclass(frozen=True)
class Groove:
    """The per-song drum choices, in grid steps of one bar (``steps_per_beat`` per beat)."""

    kit: int
    steps_per_beat: int
    kicks: tuple[int, ...]
    snares: tuple[int, ...]
    cymbal: int
    cymbal_every: int
    open_hat: bool
    ghosts: float
    swing: float
    percussion: int | None
    phrase: int
    fill_beats: int

    def describe(self) -> dict:
        """The groove as manifest data."""
        return {
            "kit": self.kit,
            "kit_name": program_name(self.kit, drums=True),
            "steps_per_beat": self.steps_per_beat,
            "kick_steps": list(self.kicks),
            "snare_steps": list(self.snares),
            "cymbal": {CLOSED_HAT: "closed hi-hat", RIDE: "ride", PEDAL_HAT: "pedal hi-hat"}[
                self.cymbal
            ],
            "swing": round(self.swing, 3),
            "phrase_bars": self.phrase,
        }


def choose_groove(meter: Meter, rng: np.random.Generator) -> Groove:
    """Draw a groove that fits ``meter`` (and its tempo)."""
    beats, division = meter.beats_per_bar, meter.division
    tempo = 60.0 / meter.beat_seconds
    sixteenths = division == 2 and (tempo < 95 or (tempo < 120 and rng.random() < 0.3))
    steps = 3 if division == 3 else 4 if sixteenths else 2
    per_bar = beats * steps
    # Backbeat: the even-numbered beats, or a half-time snare on the middle of the bar.
    if beats == 3:
        backbeats = [2] if rng.random() < 0.5 else [1, 2]
    elif beats == 1:
        backbeats = [0]
    elif beats % 2 == 0 and beats >= 4 and tempo > 110 and rng.random() < 0.25:
        backbeats = [beats // 2]
    else:
        backbeats = list(range(1, beats, 2))
    snares = tuple(b * steps for b in backbeats if b > 0) or (per_bar // 2,)
    kicks = {0}
    if beats >= 4 and rng.random() < 0.75:
        kicks.add((beats // 2) * steps)
    free = [s for s in range(1, per_bar) if s not in snares and s not in kicks]
    for _ in range(int(rng.integers(0, 3))):
        if free:
            kicks.add(int(free.pop(int(rng.integers(len(free))))))
    kit = int(rng.choice(DRUM_KITS, p=[0.3, 0.2, 0.15, 0.1, 0.08, 0.1, 0.07]))
    ride_weight = 0.55 if kit in (32, 40) else 0.2
    cymbal = int(
        rng.choice([CLOSED_HAT, RIDE, PEDAL_HAT], p=[0.75 - ride_weight, ride_weight, 0.25])
    )
    cymbal_every = 2 if steps == 4 and rng.random() < 0.5 else 1
    return Groove(
        kit=kit,
        steps_per_beat=steps,
        kicks=tuple(sorted(kicks)),
        snares=snares,
        cymbal=cymbal,
        cymbal_every=cymbal_every,
        open_hat=bool(rng.random() < 0.35) and cymbal == CLOSED_HAT,
        ghosts=float(rng.uniform(0.1, 0.3)) if rng.random() < 0.4 else 0.0,
        swing=float(rng.uniform(0.1, 0.3)) if division == 2 and rng.random() < 0.2 else 0.0,
        percussion=(
            int(rng.choice([TAMBOURINE, MARACAS, SIDE_STICK, CLAP])) if rng.random() < 0.3 else None
        ),
        phrase=int(rng.choice([4, 8])),
        fill_beats=min(beats, int(rng.choice([1, 2]))),
    )


def _fill(meter: Meter, groove: Groove, rng: np.random.Generator) -> list[tuple[float, int, int]]:
    """A fill as ``(beat position in the bar, drum, velocity)``, covering the last beats."""
    steps = 3 if meter.division == 3 else 4
    first = meter.beats_per_bar - groove.fill_beats
    count = groove.fill_beats * steps
    style = rng.integers(3)
    hits = []
    for k in range(count):
        if style == 0:  # descending toms
            drum = TOMS[min(len(TOMS) - 1, k * len(TOMS) // count)]
        elif style == 1:  # snare roll
            drum = SNARE
        else:  # snare and toms alternating
            drum = SNARE if k % 2 == 0 else TOMS[min(len(TOMS) - 1, k * len(TOMS) // count)]
        if rng.random() < 0.15 and k % steps:
            continue
        velocity = int(70 + 45 * k / max(1, count - 1))
        hits.append((first + k / steps, drum, velocity))
    return hits


def drum_track(
    meter: Meter, n_bars: int, start_bar: int, rng: np.random.Generator
) -> tuple[Track, dict]:
    """The drum part of a song of ``n_bars`` bars, silent before bar ``start_bar``.

    Returns the track and its manifest description (kit, groove).
    """
    groove = choose_groove(meter, rng)
    track = Track(name="drums", channel=DRUM_CHANNEL, program=groove.kit)
    track.reverb = int(rng.integers(10, 50))
    steps = groove.steps_per_beat
    per_bar = meter.beats_per_bar * steps
    step_seconds = meter.beat_seconds / steps
    hits: list[tuple[float, int, int]] = []  # (time in seconds, drum, velocity)

    def at(bar: int, beat_position: float) -> float:
        return bar * meter.bar_seconds + beat_position * meter.beat_seconds

    for bar in range(start_bar, n_bars):
        index = bar - start_bar
        fill_bar = (index + 1) % groove.phrase == 0 and index > 0
        fill_from = meter.beats_per_bar - groove.fill_beats if fill_bar else meter.beats_per_bar
        if index % groove.phrase == 0:
            hits.append((at(bar, 0), CRASH if rng.random() < 0.7 else CRASH_2, 110))
        for step in range(per_bar):
            position = step / steps
            if position >= fill_from:
                break
            offbeat = step % steps
            if groove.swing and steps in (2, 4) and offbeat % 2 == 1:
                position += groove.swing / steps
            on_beat = offbeat == 0
            if step in groove.kicks or (rng.random() < 0.05 and offbeat):
                hits.append((at(bar, position), KICK, 100 if step == 0 else 88))
            if step in groove.snares:
                hits.append((at(bar, position), SNARE, 105))
            elif groove.ghosts and offbeat and rng.random() < groove.ghosts:
                hits.append((at(bar, position), SNARE, int(rng.integers(22, 40))))
            if step % groove.cymbal_every == 0:
                cymbal = groove.cymbal
                if groove.open_hat and step == per_bar - steps // 2 - (steps == 3):
                    cymbal = OPEN_HAT
                hits.append((at(bar, position), cymbal, 92 if on_beat else 70))
            if groove.percussion is not None:
                if groove.percussion in (TAMBOURINE, CLAP, SIDE_STICK) and step in groove.snares:
                    hits.append((at(bar, position), groove.percussion, 80))
                elif groove.percussion == MARACAS:
                    hits.append((at(bar, position), MARACAS, 70 if on_beat else 55))
        if fill_bar:
            hits.extend((at(bar, p), drum, v) for p, drum, v in _fill(meter, groove, rng))

    for time, drum, velocity in hits:
        jitter = rng.normal(0.0, 0.006 if drum in (CLOSED_HAT, RIDE, MARACAS) else 0.004)
        velocity = int(np.clip(velocity + rng.normal(0.0, 6.0), 1, 127))
        track.notes.append(Note(max(0.0, time + jitter), HIT_SECONDS, drum, velocity))
    track.notes.sort(key=lambda n: (n.start, n.pitch))
    description = groove.describe() | {"start_bar": start_bar, "step_seconds": step_seconds}
    return track, description
