"""Minimal Standard MIDI File writer for rendered stems.

Times are kept in seconds everywhere in :mod:`spleeter.rendering`; the file is written with a
fixed tempo of one quarter note per second and :data:`TICKS_PER_SECOND` ticks per quarter, so a
tick is 100 microseconds and no tempo map is needed. Only what the renderer uses is supported:
notes, program changes (with a bank select for drum kits), controllers and pitch bend, all in
one format-0 track.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

TICKS_PER_SECOND = 10_000
"""MIDI ticks per quarter note; with a 1 s quarter note, ticks per second (max 32767)."""

DRUM_CHANNEL = 9
"""The General MIDI percussion channel (channel 10 counted from one)."""

CC_BANK_SELECT = 0
CC_MODULATION = 1
CC_VOLUME = 7
CC_PAN = 10
CC_EXPRESSION = 11
CC_REVERB_SEND = 91
CC_CHORUS_SEND = 93
CC_ALL_SOUND_OFF = 120
CC_RESET_CONTROLLERS = 121


@dataclass(frozen=True, slots=True)
class Note:
    """One note: onset and length in seconds, MIDI pitch (0-127) and velocity (1-127)."""

    start: float
    duration: float
    pitch: int
    velocity: int


@dataclass(slots=True)
class Track:
    """The notes and controller curves of one instrument on one MIDI channel.

    ``controls`` holds ``(time, controller, value)`` and ``bends`` ``(time, value)`` with a
    pitch-bend value in -8192..8191. ``bank`` 128 selects a General MIDI drum kit.
    """

    name: str
    channel: int
    program: int
    bank: int = 0
    volume: int = 100
    reverb: int = 40
    notes: list[Note] = field(default_factory=list)
    controls: list[tuple[float, int, int]] = field(default_factory=list)
    bends: list[tuple[float, int]] = field(default_factory=list)

    @property
    def end(self) -> float:
        """The time in seconds at which the last note is released."""
        return max((n.start + n.duration for n in self.notes), default=0.0)


def _varlen(value: int) -> bytes:
    """Encode a non-negative integer as a MIDI variable-length quantity."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def _ticks(seconds: float) -> int:
    return max(0, round(seconds * TICKS_PER_SECOND))


def _clamp7(value: int) -> int:
    return min(127, max(0, int(value)))


def track_events(track: Track, offset: float = 0.0) -> list[tuple[int, int, bytes]]:
    """The ``(tick, order, message)`` events of a track shifted by ``offset`` seconds.

    ``order`` sorts simultaneous events: set-up first, then note-offs, controllers and bends,
    then note-ons, so that a repeated pitch is released before it is struck again.
    """
    ch = track.channel & 0x0F
    t0 = _ticks(offset)
    events: list[tuple[int, int, bytes]] = [
        (t0, 0, bytes([0xB0 | ch, CC_RESET_CONTROLLERS, 0])),
        (t0, 0, bytes([0xB0 | ch, CC_BANK_SELECT, min(track.bank, 127)])),
        (t0, 0, bytes([0xC0 | ch, track.program & 0x7F])),
        (t0, 0, bytes([0xB0 | ch, CC_VOLUME, _clamp7(track.volume)])),
        (t0, 0, bytes([0xB0 | ch, CC_PAN, 64])),
        (t0, 0, bytes([0xB0 | ch, CC_REVERB_SEND, _clamp7(track.reverb)])),
        (t0, 0, bytes([0xB0 | ch, CC_CHORUS_SEND, 0])),
        (t0, 0, bytes([0xE0 | ch, 0x00, 0x40])),
    ]
    for note in track.notes:
        on = _ticks(offset + note.start)
        off = max(on + 1, _ticks(offset + note.start + note.duration))
        pitch = note.pitch & 0x7F
        events.append((on, 3, bytes([0x90 | ch, pitch, min(127, max(1, note.velocity))])))
        events.append((off, 1, bytes([0x80 | ch, pitch, 0])))
    for time, controller, value in track.controls:
        events.append((_ticks(offset + time), 2, bytes([0xB0 | ch, controller, _clamp7(value)])))
    for time, value in track.bends:
        raw = min(16383, max(0, int(value) + 8192))
        events.append((_ticks(offset + time), 2, bytes([0xE0 | ch, raw & 0x7F, raw >> 7])))
    return events


def silence_events(channels: range | list[int], time: float) -> list[tuple[int, int, bytes]]:
    """Events that cut every voice on ``channels`` at ``time`` seconds (All Sound Off)."""
    tick = _ticks(time)
    return [(tick, 1, bytes([0xB0 | (c & 0x0F), CC_ALL_SOUND_OFF, 0])) for c in channels]


def write_midi(path: Path, events: list[tuple[int, int, bytes]], end: float) -> None:
    """Write ``events`` (from :func:`track_events`) as a format-0 MIDI file lasting ``end`` s."""
    ordered = sorted(events, key=lambda e: (e[0], e[1]))
    body = bytearray()
    # Tempo: 1,000,000 microseconds per quarter note, so one quarter note lasts one second.
    body += b"\x00\xff\x51\x03" + (1_000_000).to_bytes(3, "big")
    last = 0
    for tick, _, message in ordered:
        body += _varlen(tick - last) + message
        last = tick
    end_tick = max(last, _ticks(end))
    body += _varlen(end_tick - last) + b"\xff\x2f\x00"
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, TICKS_PER_SECOND)
    path.write_bytes(header + b"MTrk" + struct.pack(">I", len(body)) + bytes(body))
