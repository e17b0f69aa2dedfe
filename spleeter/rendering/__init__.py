"""Deterministic generator of realistic multitrack songs (Slakh2100-style), for offline data.

Scores from the ``music21`` corpus (Bach chorales, Monteverdi madrigals, Palestrina masses) are
arranged into vocals, bass, other and piano parts, with generated drum parts, rendered per role
by FluidSynth with the FluidR3 General MIDI soundfont, mixed with drawn gains, tempi, keys and
panning, and written in MUSDB layout with upstream-format CSVs (see ``docs/rendered-dataset.md``)::

    from spleeter.rendering import render_dataset
    render_dataset("data/rendered", n_songs=10, seed=0, duration=30.0, stems=4)

or ``python -m spleeter.rendering -o data/rendered --songs 10 --seed 0 --duration 30``.
Needs the ``render`` extras (``music21``) and the Debian packages ``fluidsynth`` and
``fluid-soundfont-gm``.
"""

from .dataset import STEMS, render_dataset

__all__ = ["STEMS", "render_dataset"]
