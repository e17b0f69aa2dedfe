"""Arrange a corpus piece into the MIDI tracks of one song, role by role.

The top voice is sung (``vocals``, monophonic, with vibrato), the lowest voice is played an
octave down by a bass, the inner voices and the harmony they make feed the ``other`` layers
(lines, pads, strummed or broken chords) and a comping ``piano``; ``drums`` come from
:mod:`.drums`. The piece is transposed, played at a drawn tempo from a drawn bar, looped when the
song is longer than the piece, and humanised. All choices come from the generator passed in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .drums import Meter, drum_track
from .instruments import BASS_PROGRAMS, OTHER_PROGRAMS, PIANO_PROGRAMS, VOCAL_PROGRAMS, program_name
from .midi import Note, Track
from .scores import Piece, Voice

ROLES = ("vocals", "drums", "bass", "other", "piano")
"""Every instrument role a song is rendered with (piano joins "other" in 4-stem datasets)."""

CHANNELS = {"vocals": 0, "bass": 1, "other": (2, 3), "piano": 4}
BEND_PER_CENT = 8192 / 200
"""Pitch-bend units per cent with the default +-2 semitone bend range."""

VOCAL_RANGE = (53, 81)
BASS_RANGE = (28, 55)


@dataclass
class Song:
    """The tracks of one song per role, and how they were made (for the manifest)."""

    piece: str
    duration: float
    tempo: float
    beat: float
    key_shift: int
    start_bar: int
    tracks: dict[str, list[Track]] = field(default_factory=dict)
    details: dict[str, dict] = field(default_factory=dict)


class Timeline:
    """Maps a piece, started at ``origin`` and looped every ``loop`` quarters, to song time."""

    def __init__(self, piece: Piece, origin: float, loop: float, song_quarters: float):
        self.piece = piece
        self.origin = origin
        self.loop = loop
        self.song_quarters = song_quarters
        everything = [n for v in piece.voices for n in v]
        self._starts = np.array([n[0] for n in everything])
        self._ends = np.array([n[0] + n[1] for n in everything])
        self._pitches = np.array([n[2] for n in everything])

    def unroll(self, voice: Voice) -> list[tuple[float, float, int]]:
        """The voice's notes in song quarters, ``(onset, duration, pitch)``, looped as needed."""
        notes = []
        passes = math.ceil((self.song_quarters + self.origin) / self.loop) + 1
        for p in range(passes):
            shift = p * self.loop - self.origin
            for start, duration, pitch in voice:
                onset = start + shift
                if 0 <= onset < self.song_quarters:
                    notes.append((onset, duration, pitch))
        return notes

    def chord_at(self, quarter: float) -> list[int]:
        """Pitches sounding at song quarter ``quarter`` (just after it when all voices rest)."""
        position = (quarter + self.origin) % self.loop
        for probe in (position, position + 0.25, position + 0.5, position - 0.5):
            mask = (self._starts <= probe + 1e-6) & (self._ends > probe + 1e-6)
            if mask.any():
                return sorted(int(p) for p in self._pitches[mask])
        return []


def voicing(pitches: list[int], low: int, size: int) -> list[int]:
    """A close-position chord of the pitch classes of ``pitches``, from ``low`` upwards."""
    classes = sorted({p % 12 for p in pitches}, key=lambda c: (c - low) % 12)
    chord = []
    for k in range(size):
        pc = classes[k % len(classes)]
        pitch = low + (pc - low) % 12
        while chord and pitch <= chord[-1]:
            pitch += 12
        chord.append(pitch)
    return chord


def fold(pitch: int, low: int, high: int) -> int:
    """Move ``pitch`` by octaves into ``[low, high]``."""
    while pitch < low:
        pitch += 12
    while pitch > high:
        pitch -= 12
    return pitch


class _Humaniser:
    """Timing and velocity jitter shared by the pitched roles of a song."""

    def __init__(self, rng: np.random.Generator, seconds_per_quarter: float):
        self.rng = rng
        self.spq = seconds_per_quarter

    def note(self, onset: float, length: float, pitch: int, velocity: float, sd=0.005) -> Note:
        start = max(0.0, onset * self.spq + self.rng.normal(0.0, sd))
        velocity = int(np.clip(velocity + self.rng.normal(0.0, 5.0), 1, 127))
        return Note(start, max(0.03, length * self.spq), int(pitch), velocity)


def _vocals(song: Song, timeline: Timeline, rng, human: _Humaniser, bar: float, muted) -> Track:
    program = int(rng.choice(VOCAL_PROGRAMS))
    track = Track(
        "vocals", CHANNELS["vocals"], program, volume=110, reverb=int(rng.integers(30, 70))
    )
    rate, depth = rng.uniform(4.8, 6.2), rng.uniform(12.0, 35.0)
    articulation = rng.uniform(0.9, 0.98)
    base = rng.uniform(80, 100)
    melody = [
        (q, d, fold(p + song.key_shift, *VOCAL_RANGE))
        for q, d, p in timeline.unroll(timeline.piece.melody)
        if not muted(int(q // bar))
    ]
    notes = []
    for q, d, pitch in melody:
        accent = 6 if abs((q / bar) - round(q / bar)) < 1e-6 else 0
        notes.append(human.note(q, d * articulation, pitch, base + accent, sd=0.008))
    previous_pitch = None
    for k, note in enumerate(notes):
        pitch = note.pitch
        if k + 1 < len(notes):  # stay monophonic despite the timing jitter
            room = notes[k + 1].start - note.start - 0.02
            note = Note(note.start, max(0.01, min(note.duration, room)), pitch, note.velocity)
        track.notes.append(note)
        scoop = previous_pitch is not None and abs(pitch - previous_pitch) > 2
        scoop = scoop and rng.random() < 0.4  # slide up into the note from 40 cents below
        for step in range(4 if scoop else 1):
            cents = -40.0 * (1 - step / 3) if scoop else 0.0
            track.bends.append((note.start + 0.02 * step, int(cents * BEND_PER_CENT)))
        previous_pitch = pitch
        t = 0.18
        while t < note.duration - 0.02:
            ramp = min(1.0, (t - 0.18) / 0.25)
            cents = depth * ramp * math.sin(2 * math.pi * rate * (t - 0.18))
            track.bends.append((note.start + t, int(cents * BEND_PER_CENT)))
            t += 0.025
    song.details["vocals"] = {
        "programs": [{"program": program, "name": program_name(program), "layer": "melody"}],
        "vibrato_hz": round(float(rate), 2),
        "vibrato_cents": round(float(depth), 1),
    }
    return track


def _bass_line(timeline: Timeline, beat: float) -> list[tuple[float, float, int]]:
    """The lowest voice, its rests of a beat or more filled with the lowest sounding note."""
    written = sorted(timeline.unroll(timeline.piece.bass))
    line = list(written)
    edges = [0.0] + [q + d for q, d, _ in written]
    starts = [q for q, _, _ in written] + [timeline.song_quarters]
    for rest_start, rest_end in zip(edges, starts, strict=True):
        q = math.ceil(rest_start / beat - 1e-6) * beat
        while q + beat <= rest_end + 1e-6:
            chord = timeline.chord_at(q)
            if chord:
                line.append((q, beat, chord[0]))
            q += beat
    return sorted(line)


def _bass(song: Song, timeline: Timeline, rng, human: _Humaniser, beat: float) -> Track:
    program = int(rng.choice(BASS_PROGRAMS))
    track = Track("bass", CHANNELS["bass"], program, volume=110, reverb=int(rng.integers(0, 20)))
    style = str(rng.choice(["written", "pulse", "octaves"], p=[0.45, 0.35, 0.2]))
    base = rng.uniform(85, 105)
    pulse = beat / 2
    for q, d, p in _bass_line(timeline, beat):
        pitch = fold(p + song.key_shift - 12, *BASS_RANGE)
        if style == "written" or d <= pulse + 1e-6:
            track.notes.append(human.note(q, d * 0.92, pitch, base))
            continue
        for k in range(int(round(d / pulse))):
            octave = 12 if style == "octaves" and k % 2 == 1 and pitch + 12 <= 67 else 0
            velocity = base + (6 if k == 0 else -4)
            track.notes.append(human.note(q + k * pulse, pulse * 0.8, pitch + octave, velocity))
    song.details["bass"] = {
        "programs": [{"program": program, "name": program_name(program), "layer": style}],
    }
    return track


def _comp_grid(song_quarters: float, step: float) -> np.ndarray:
    return np.arange(0.0, song_quarters, step)


def _piano(song: Song, timeline: Timeline, rng, human: _Humaniser, piece: Piece) -> Track:
    program = int(rng.choice(PIANO_PROGRAMS))
    track = Track("piano", CHANNELS["piano"], program, volume=100, reverb=int(rng.integers(20, 60)))
    style = str(rng.choice(["block", "offbeat", "arpeggio", "sustain"]))
    base = rng.uniform(65, 90)
    low = int(rng.integers(53, 61))
    beat, bar = piece.beat, piece.bar
    shift = song.key_shift
    # Left hand: the bass note at each bar and half bar, an octave or two down.
    for q in _comp_grid(timeline.song_quarters, bar / 2 if piece.beats_per_bar % 2 == 0 else bar):
        chord = timeline.chord_at(q)
        if chord:
            length = bar / 2 if piece.beats_per_bar % 2 == 0 else bar
            track.notes.append(human.note(q, length * 0.95, fold(chord[0] + shift, 36, 52), base))
    if style == "arpeggio":
        step = beat / piece.division
        for k, q in enumerate(_comp_grid(timeline.song_quarters, step)):
            chord = timeline.chord_at(q)
            if chord:
                tones = voicing([p + shift for p in chord], low, 4)
                pitch = tones[k % 4] if (k // 4) % 2 == 0 else tones[3 - k % 4]
                track.notes.append(human.note(q, step * 1.6, pitch, base - 8))
    else:
        step = {"block": beat, "offbeat": beat, "sustain": bar / 2}[style]
        offset = beat / 2 if style == "offbeat" else 0.0
        length = {"block": beat * 0.85, "offbeat": beat * 0.35, "sustain": bar / 2 * 0.97}[style]
        for q in _comp_grid(timeline.song_quarters - offset, step):
            chord = timeline.chord_at(q + offset)
            if chord:
                for pitch in voicing([p + shift for p in chord], low, 3):
                    track.notes.append(human.note(q + offset, length, pitch, base, sd=0.004))
    song.details["piano"] = {
        "programs": [{"program": program, "name": program_name(program), "layer": style}],
    }
    return track


def _other_layer(
    style: str, channel: int, timeline: Timeline, rng, human: _Humaniser, piece: Piece, shift: int
) -> Track:
    program = int(rng.choice(OTHER_PROGRAMS[style]))
    track = Track(f"other-{style}", channel, program, volume=100, reverb=int(rng.integers(20, 70)))
    base = rng.uniform(65, 95)
    beat, bar = piece.beat, piece.bar
    if style == "lines":
        for voice in piece.inner:
            for q, d, p in timeline.unroll(voice):
                track.notes.append(human.note(q, d * 0.95, fold(p + shift, 48, 84), base))
    elif style == "pad":
        low = int(rng.integers(50, 60))
        for q in _comp_grid(timeline.song_quarters, bar / 2):
            chord = timeline.chord_at(q)
            if chord:
                for pitch in voicing([p + shift for p in chord], low, 4):
                    track.notes.append(human.note(q, bar / 2, pitch, base - 10, sd=0.01))
    elif style == "strum":
        step = beat / piece.division
        mask = rng.random(piece.beats_per_bar * piece.division) < 0.7
        mask[0] = True
        for k, q in enumerate(_comp_grid(timeline.song_quarters, step)):
            if not mask[k % len(mask)]:
                continue
            chord = timeline.chord_at(q)
            if not chord:
                continue
            tones = [fold(chord[0] + shift, 40, 52), *voicing([p + shift for p in chord], 55, 4)]
            down = k % piece.division == 0
            accent = 10 if down else 0
            for i, pitch in enumerate(tones if down else tones[::-1]):
                start = q + (0.012 * i) / human.spq
                track.notes.append(human.note(start, step * 0.9, pitch, base + accent, sd=0.002))
    else:  # arpeggio
        step = beat / piece.division / (2 if rng.random() < 0.3 else 1)
        low = int(rng.integers(60, 68))
        for k, q in enumerate(_comp_grid(timeline.song_quarters, step)):
            chord = timeline.chord_at(q)
            if chord:
                tones = voicing([p + shift for p in chord], low, 3)
                pitch = tones[k % 3] + (12 if (k // 3) % 2 else 0)
                track.notes.append(human.note(q, step * 1.5, pitch, base - 5))
    return track


def arrange(piece: Piece, duration: float, rng: np.random.Generator) -> Song:
    """Draw tempo, key, start bar and instrumentation, and build every role's tracks."""
    melody_lengths = sorted(d for _, d, _ in piece.melody)
    median = melody_lengths[len(melody_lengths) // 2]
    notes_per_second = rng.uniform(1.2, 2.4)  # melody notes per second sets the tempo
    tempo = float(np.clip(notes_per_second * median / piece.beat * 60.0, 60.0, 160.0))
    tempo = round(tempo, 1)
    spq = 60.0 / tempo / piece.beat  # seconds per quarter note
    low, high = min(p for *_, p in piece.melody), max(p for *_, p in piece.melody)
    shifts = [s for s in range(-5, 7) if VOCAL_RANGE[0] <= low + s and high + s <= VOCAL_RANGE[1]]
    key_shift = int(rng.choice(shifts)) if shifts else 0
    bars_in_piece = max(1, int((piece.length - piece.pickup) // piece.bar))
    first = -1 if piece.pickup > 0 else 0
    start_bar = int(rng.integers(first, max(first + 1, bars_in_piece // 2)))
    origin = piece.pickup + start_bar * piece.bar
    loop = math.ceil((piece.length - piece.pickup) / piece.bar - 1e-6) * piece.bar
    if loop < piece.length - 1e-6:
        loop += piece.bar
    song_quarters = duration / spq
    timeline = Timeline(piece, origin, loop, song_quarters)
    song = Song(piece.name, duration, tempo, piece.beat, key_shift, start_bar)
    human = _Humaniser(rng, spq)
    n_bars = math.ceil(song_quarters / piece.bar)

    intro = int(rng.integers(1, 5)) if rng.random() < 0.5 and n_bars >= 6 else 0
    intro = min(intro, n_bars // 3)
    gap = (-1, -1)
    if n_bars - 4 > intro + 4 and rng.random() < 0.3:
        first_gap = int(rng.integers(intro + 4, n_bars - 4))
        gap = (first_gap, first_gap + int(rng.integers(2, 5)))

    def muted(bar_index: int) -> bool:
        return bar_index < intro or gap[0] <= bar_index < gap[1]

    song.tracks["vocals"] = [_vocals(song, timeline, rng, human, piece.bar, muted)]
    song.details["vocals"] |= {"intro_bars": intro, "instrumental_bars": list(gap)}

    meter = Meter(piece.beats_per_bar, piece.division, piece.beat * spq)
    drums_from = intro if intro and rng.random() < 0.4 else 0
    drums, groove = drum_track(meter, n_bars, drums_from, rng)
    song.tracks["drums"] = [drums]
    song.details["drums"] = {
        "programs": [{"program": drums.program, "name": program_name(drums.program, True)}],
        "groove": groove,
    }

    song.tracks["bass"] = [_bass(song, timeline, rng, human, piece.beat)]
    song.tracks["piano"] = [_piano(song, timeline, rng, human, piece)]

    styles = list(OTHER_PROGRAMS)
    count = 2 if rng.random() < 0.45 else 1
    chosen = [styles[i] for i in sorted(rng.choice(len(styles), size=count, replace=False))]
    layers = [
        _other_layer(style, channel, timeline, rng, human, piece, key_shift)
        for style, channel in zip(chosen, CHANNELS["other"], strict=False)
    ]
    song.tracks["other"] = layers
    song.details["other"] = {
        "programs": [
            {"program": t.program, "name": program_name(t.program), "layer": s}
            for t, s in zip(layers, chosen, strict=True)
        ]
    }
    for tracks in song.tracks.values():
        for track in tracks:
            track.notes = [n for n in track.notes if n.start < duration]
            track.bends = [b for b in track.bends if b[0] < duration]
    return song
