"""Balance, pan and sum rendered roles into stems and a mixture.

Each role is first brought to a drawn loudness (gated RMS, in dB relative to the others: vocals
and drums a little louder, piano and other softer), panned with a constant-power law, then
every stem is scaled by one common factor so that the mixture peaks at :data:`PEAK_DBFS`.
Stems are computed in float32; the mixture is their float64 sum rounded once to float32, so it
equals the sum of the written stems to within one float32 rounding (about 1e-7).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .synth import SAMPLE_RATE

PEAK_DBFS = -1.0
"""Peak level of every mixture."""

LEVELS_DB: dict[str, tuple[float, float]] = {
    "vocals": (-1.0, 2.5),
    "drums": (-1.5, 2.0),
    "bass": (-4.0, -0.5),
    "other": (-5.0, -1.0),
    "piano": (-6.0, -2.0),
}
"""Range of each role's gated RMS level, in dB relative to the others, before normalisation."""

FADE_SECONDS = 0.05
"""Fade at the end of every stem (the song is cut from a longer performance)."""


@dataclass
class Mix:
    """The stems (``name -> float32 (n, 2)``), their mixture and the per-role settings."""

    stems: dict[str, np.ndarray]
    mixture: np.ndarray
    gains_db: dict[str, float]
    pans: dict[str, float]


def gated_rms(audio: np.ndarray, frame: int = 4096, floor_db: float = -40.0) -> float:
    """RMS over the frames within ``floor_db`` of the loudest one (ignores silent parts)."""
    n = len(audio) // frame
    if n == 0:
        return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    blocks = audio[: n * frame].reshape(n, -1)
    frames = np.einsum("ij,ij->i", blocks, blocks, dtype=np.float64) / blocks.shape[1]
    loud = frames[frames >= frames.max() * 10 ** (floor_db / 10)]
    return float(np.sqrt(loud.mean()))


def pan(audio: np.ndarray, position: float) -> np.ndarray:
    """Constant-power balance of a stereo signal; ``position`` in [-1 (left), 1 (right)]."""
    angle = (position + 1.0) * np.pi / 4
    gains = np.sqrt(2.0) * np.array([np.cos(angle), np.sin(angle)], dtype=np.float32)
    return audio * gains


def draw_settings(roles: list[str], rng: np.random.Generator) -> tuple[dict, dict]:
    """Draw each role's relative level (dB) and pan position."""
    levels = {role: float(rng.uniform(*LEVELS_DB[role])) for role in roles}
    side = 1.0 if rng.random() < 0.5 else -1.0
    pans = {
        "vocals": float(rng.uniform(-0.05, 0.05)),
        "bass": float(rng.uniform(-0.05, 0.05)),
        "drums": float(rng.uniform(-0.1, 0.1)),
        "other": side * float(rng.uniform(0.1, 0.6)),
        "piano": -side * float(rng.uniform(0.1, 0.5)),
    }
    return levels, {role: pans[role] for role in roles}


def mix(
    roles: dict[str, np.ndarray],
    stem_names: tuple[str, ...],
    rng: np.random.Generator,
    merge: dict[str, str] | None = None,
) -> Mix:
    """Balance and pan ``roles``, merge them into ``stem_names`` and normalise the mixture.

    ``merge`` maps a role to the stem it is summed into (``{"piano": "other"}`` for 4 stems).
    """
    merge = merge or {}
    levels, pans = draw_settings(list(roles), rng)
    first = next(iter(roles.values()))
    stems = {name: np.zeros(first.shape, dtype=np.float32) for name in stem_names}
    gains: dict[str, float] = {}
    for role, audio in roles.items():
        rms = gated_rms(audio)
        gain_db = levels[role] - 20 * np.log10(rms) - 20.0 if rms > 0 else 0.0
        gains[role] = float(gain_db)
        stems[merge.get(role, role)] += pan(audio, pans[role]) * np.float32(10 ** (gain_db / 20))
    peak = float(np.abs(sum(stems.values())).max())
    scale = 10 ** (PEAK_DBFS / 20) / peak if peak > 0 else 1.0
    n = len(first)
    fade = min(n, round(FADE_SECONDS * SAMPLE_RATE))
    ramp = np.linspace(1.0, 0.0, fade, dtype=np.float32)[:, None]
    for stem in stems.values():
        stem *= np.float32(scale)
        stem[n - fade :] *= ramp
    mixture = np.zeros(first.shape, dtype=np.float64)
    for stem in stems.values():
        mixture += stem
    scale_db = 20 * np.log10(scale)
    return Mix(
        stems=stems,
        mixture=mixture.astype(np.float32),
        gains_db={role: round(g + scale_db, 3) for role, g in gains.items()},
        pans={role: round(p, 3) for role, p in pans.items()},
    )
