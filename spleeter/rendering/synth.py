"""Render MIDI tracks to audio with the ``fluidsynth`` command and a General MIDI soundfont.

All roles of a song are rendered by one ``fluidsynth`` run, one after the other on the time
line, separated by :data:`GAP_SECONDS` of silence (each segment ends with All Sound Off, and the
gap lets the shared reverb die out), so the soundfont is loaded once per song. The raw 32-bit
float output is cut back into one ``(samples, 2)`` array per role, all of the song's length.

FluidSynth's fast renderer is deterministic with a fixed sample rate, one CPU core and the
sample-based player clock; the raw output has no header (libsndfile's float WAV header holds a
time stamp), so the same MIDI always gives the same bytes.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from .. import SpleeterError
from .midi import Track, silence_events, track_events, write_midi

SAMPLE_RATE = 44100
GAP_SECONDS = 2.5
"""Silence between two roles' segments in the shared render."""

GAIN = 0.5
"""FluidSynth master gain (levels are normalised afterwards; float output does not clip)."""

SOUNDFONT_LOCATIONS = (
    Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
    Path("/usr/share/soundfonts/FluidR3_GM.sf2"),
    Path("/usr/share/soundfonts/FluidR3_GM2-2.sf2"),
)
"""Where Debian/Ubuntu (``fluid-soundfont-gm``) and other distributions install FluidR3 GM."""

SETTINGS = {
    "synth.sample-rate": str(SAMPLE_RATE),
    "synth.cpu-cores": "1",
    "synth.lock-memory": "0",
    "synth.chorus.active": "0",
    "synth.reverb.active": "1",
    "synth.reverb.room-size": "0.45",
    "synth.reverb.damp": "0.3",
    "synth.reverb.width": "0.8",
    "synth.reverb.level": "0.6",
    "synth.polyphony": "256",
    "player.timing-source": "sample",
    "audio.period-size": "64",
}
"""FluidSynth settings fixed for deterministic rendering (chorus off, fixed reverb)."""


def find_fluidsynth() -> str:
    """Path of the ``fluidsynth`` executable, or a :class:`SpleeterError` saying what to install."""
    binary = shutil.which("fluidsynth")
    if binary is None:
        raise SpleeterError(
            "fluidsynth not found on PATH: install the Debian package 'fluidsynth' "
            "(apt-get install fluidsynth)"
        )
    return binary


def find_soundfont(path: str | Path | None = None) -> Path:
    """The soundfont to use: ``path`` if given, else the FluidR3 GM soundfont where installed."""
    if path is not None:
        candidate = Path(path)
        if not candidate.is_file():
            raise SpleeterError(f"soundfont not found: {candidate}")
        return candidate
    for candidate in SOUNDFONT_LOCATIONS:
        if candidate.is_file():
            return candidate
    raise SpleeterError(
        "FluidR3 General MIDI soundfont not found (looked in "
        f"{', '.join(str(p) for p in SOUNDFONT_LOCATIONS)}): install the Debian package "
        "'fluid-soundfont-gm' (apt-get install fluid-soundfont-gm) or pass a soundfont path"
    )


def fluidsynth_version(binary: str | None = None) -> str:
    """The first line of ``fluidsynth --version``."""
    binary = binary or find_fluidsynth()
    result = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    return (result.stdout.strip().splitlines() or ["unknown"])[0]


def fluidsynth_command(binary: str, soundfont: Path, midi: Path, output: Path) -> list[str]:
    """The ``fluidsynth`` fast-render command writing raw little-endian float32 stereo."""
    command = [binary, "-n", "-i", "-q", "-r", str(SAMPLE_RATE), "-g", str(GAIN)]
    command += ["-F", str(output), "-T", "raw", "-O", "float", "-E", "little"]
    for name, value in SETTINGS.items():
        command += ["-o", f"{name}={value}"]
    return [*command, str(soundfont), str(midi)]


def render_roles(
    tracks: dict[str, list[Track]],
    duration: float,
    soundfont: Path,
    binary: str | None = None,
) -> dict[str, np.ndarray]:
    """Render each role's tracks to a float32 ``(round(duration * 44100), 2)`` array."""
    binary = binary or find_fluidsynth()
    length = round(duration * SAMPLE_RATE)
    segment = duration + GAP_SECONDS
    events = []
    for k, role_tracks in enumerate(tracks.values()):
        offset = k * segment
        for track in role_tracks:
            events += track_events(track, offset)
        channels = sorted({t.channel for t in role_tracks})
        events += silence_events(channels, offset + duration + 0.05)
    end = len(tracks) * segment
    with tempfile.TemporaryDirectory(prefix="spleeter-render-") as tmp:
        midi, raw = Path(tmp) / "song.mid", Path(tmp) / "song.raw"
        write_midi(midi, events, end)
        command = fluidsynth_command(binary, soundfont, midi, raw)
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0 or not raw.is_file():
            message = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise SpleeterError(f"fluidsynth failed (exit {result.returncode}): {message}")
        audio = np.fromfile(raw, dtype="<f4").reshape(-1, 2)
    out = {}
    for k, role in enumerate(tracks):
        start = round(k * segment * SAMPLE_RATE)
        piece = audio[start : start + length]
        if len(piece) < length:
            piece = np.concatenate([piece, np.zeros((length - len(piece), 2), "<f4")])
        out[role] = np.ascontiguousarray(piece, dtype=np.float32)
    return out
