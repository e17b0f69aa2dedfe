"""Loudness matching with ITU-R BS.1770 integrated loudness (pyloudnorm)."""

import numpy as np

DEFAULT_TARGET_LUFS: float = -23.0
"""EBU R 128's programme loudness; the target every signal of a trial is matched to."""

PEAK_CEILING: float = 0.98
"""Largest sample magnitude allowed after matching (integer PCM files must not clip)."""


def integrated_loudness(signal: np.ndarray, sample_rate: int) -> float:
    """BS.1770 integrated loudness of ``signal`` ``(n, channels)`` in LUFS (-inf if silent)."""
    import pyloudnorm

    return float(pyloudnorm.Meter(sample_rate).integrated_loudness(np.asarray(signal, float)))


def matching_gains(
    signals: list[np.ndarray], sample_rate: int, target: float = DEFAULT_TARGET_LUFS
) -> tuple[list[float], float]:
    """Linear gains bringing every signal to one loudness, and that loudness.

    The loudness is ``target``, lowered for all signals together when a gain would push a
    peak above :data:`PEAK_CEILING` (the signals stay matched to each other). A signal too quiet
    to be measured (gated out, -inf) is left at unit gain.
    """
    loudness = [integrated_loudness(signal, sample_rate) for signal in signals]
    gains = [1.0 if not np.isfinite(lu) else 10.0 ** ((target - lu) / 20.0) for lu in loudness]
    peaks = [
        float(np.max(np.abs(s))) * g if s.size else 0.0 for s, g in zip(signals, gains, strict=True)
    ]
    worst = max(peaks, default=0.0)
    if worst > PEAK_CEILING:
        scale = PEAK_CEILING / worst
        gains = [g * scale for g in gains]
        target += 20.0 * np.log10(scale)
    return gains, float(target)
