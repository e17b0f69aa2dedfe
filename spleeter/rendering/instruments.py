"""General MIDI programs the arranger draws from, per role, and their names.

Program numbers are zero-based General MIDI numbers (0 = Acoustic Grand Piano). Drum kits are
programs on the percussion channel (bank 128 in the FluidR3 GM soundfont).
"""

from __future__ import annotations

VOCAL_PROGRAMS = (52, 53, 54, 85)
"""Choir Aahs, Voice Oohs, Synth Voice, Lead 6 (voice): the sung melody."""

BASS_PROGRAMS = (32, 33, 34, 35, 36, 37, 38, 39)
"""Acoustic, fingered, picked, fretless, slap 1 and 2, synth 1 and 2 bass."""

PIANO_PROGRAMS = (0, 1, 2, 3, 4, 5)
"""Acoustic grand, bright acoustic, electric grand, honky-tonk, electric pianos 1 and 2."""

OTHER_PROGRAMS: dict[str, tuple[int, ...]] = {
    # Inner voices played as lines: strings, brass, reeds, pipes, organ, accordion.
    "lines": (48, 49, 40, 41, 42, 60, 61, 56, 57, 65, 66, 68, 71, 73, 19, 21, 16),
    # Sustained chords: string ensembles, organs, synth pads, brass sections.
    "pad": (48, 49, 50, 51, 16, 17, 18, 19, 88, 89, 90, 92, 95, 61, 62),
    # Strummed chords: nylon, steel, jazz, clean, muted, overdriven, distorted guitar.
    "strum": (24, 25, 26, 27, 28, 29, 30),
    # Broken chords: harp, vibraphone, marimba, celesta, guitars, banjo, koto.
    "arpeggio": (46, 11, 12, 8, 24, 25, 105, 107),
}
"""Programs of the "other" stem, per playing style."""

DRUM_KITS = (0, 8, 16, 24, 25, 32, 40)
"""Standard, Room, Power, Electronic, TR-808, Jazz, Brush kits."""

DRUM_KIT_NAMES = {
    0: "Standard",
    8: "Room",
    16: "Power",
    24: "Electronic",
    25: "TR-808",
    32: "Jazz",
    40: "Brush",
}

GM_NAMES = (
    "Acoustic Grand Piano", "Bright Acoustic Piano", "Electric Grand Piano", "Honky-tonk Piano",
    "Electric Piano 1", "Electric Piano 2", "Harpsichord", "Clavinet", "Celesta", "Glockenspiel",
    "Music Box", "Vibraphone", "Marimba", "Xylophone", "Tubular Bells", "Dulcimer",
    "Drawbar Organ", "Percussive Organ", "Rock Organ", "Church Organ", "Reed Organ", "Accordion",
    "Harmonica", "Tango Accordion", "Acoustic Guitar (nylon)", "Acoustic Guitar (steel)",
    "Electric Guitar (jazz)", "Electric Guitar (clean)", "Electric Guitar (muted)",
    "Overdriven Guitar", "Distortion Guitar", "Guitar Harmonics", "Acoustic Bass",
    "Electric Bass (finger)", "Electric Bass (pick)", "Fretless Bass", "Slap Bass 1",
    "Slap Bass 2", "Synth Bass 1", "Synth Bass 2", "Violin", "Viola", "Cello", "Contrabass",
    "Tremolo Strings", "Pizzicato Strings", "Orchestral Harp", "Timpani", "String Ensemble 1",
    "String Ensemble 2", "Synth Strings 1", "Synth Strings 2", "Choir Aahs", "Voice Oohs",
    "Synth Voice", "Orchestra Hit", "Trumpet", "Trombone", "Tuba", "Muted Trumpet",
    "French Horn", "Brass Section", "Synth Brass 1", "Synth Brass 2", "Soprano Sax", "Alto Sax",
    "Tenor Sax", "Baritone Sax", "Oboe", "English Horn", "Bassoon", "Clarinet", "Piccolo",
    "Flute", "Recorder", "Pan Flute", "Blown Bottle", "Shakuhachi", "Whistle", "Ocarina",
    "Lead 1 (square)", "Lead 2 (sawtooth)", "Lead 3 (calliope)", "Lead 4 (chiff)",
    "Lead 5 (charang)", "Lead 6 (voice)", "Lead 7 (fifths)", "Lead 8 (bass + lead)",
    "Pad 1 (new age)", "Pad 2 (warm)", "Pad 3 (polysynth)", "Pad 4 (choir)", "Pad 5 (bowed)",
    "Pad 6 (metallic)", "Pad 7 (halo)", "Pad 8 (sweep)", "FX 1 (rain)", "FX 2 (soundtrack)",
    "FX 3 (crystal)", "FX 4 (atmosphere)", "FX 5 (brightness)", "FX 6 (goblins)",
    "FX 7 (echoes)", "FX 8 (sci-fi)", "Sitar", "Banjo", "Shamisen", "Koto", "Kalimba",
    "Bagpipe", "Fiddle", "Shanai", "Tinkle Bell", "Agogo", "Steel Drums", "Woodblock",
    "Taiko Drum", "Melodic Tom", "Synth Drum", "Reverse Cymbal", "Guitar Fret Noise",
    "Breath Noise", "Seashore", "Bird Tweet", "Telephone Ring", "Helicopter", "Applause",
    "Gunshot",
)  # fmt: skip
"""General MIDI level 1 program names, indexed by zero-based program number."""


def program_name(program: int, drums: bool = False) -> str:
    """Human-readable name of a program (a drum kit on the percussion channel)."""
    if drums:
        return f"{DRUM_KIT_NAMES.get(program, f'Kit {program}')} Kit"
    return GM_NAMES[program]
