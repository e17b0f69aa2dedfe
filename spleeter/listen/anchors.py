"""The anchors of BS.1534-3: low-pass filtered versions of the reference.

The lower anchor is low-passed at 3.5 kHz; the standard asks for a pass band ripple within
0.1 dB, at least 25 dB attenuation at 4 kHz and 50 dB at 4.5 kHz. The mid anchor is the same
specification scaled to 7 kHz (25 dB at 8 kHz, 50 dB at 9 kHz). Both are linear-phase FIR filters
(Kaiser window) with the stop band starting where the 25 dB point is required and 60 dB
attenuation there, so each requirement holds with margin; they are applied with their delay
removed, so an anchor stays sample-aligned with the reference (switching keeps the beat).
"""

from dataclasses import dataclass

import numpy as np

STOPBAND_DB: float = 60.0
"""Attenuation the filters are designed for from the stop-band edge on."""


@dataclass(frozen=True)
class AnchorSpec:
    """One anchor's name, cut-off and the standard's limits."""

    name: str
    passband_hz: float
    ripple_db: float
    """Largest pass-band deviation allowed from 0 dB, 0 to ``passband_hz``."""
    stop25_hz: float
    """Frequency from which the response must be at least 25 dB down."""
    stop50_hz: float
    """Frequency from which the response must be at least 50 dB down."""


LOWER_ANCHOR = AnchorSpec("anchor35", 3500.0, 0.1, 4000.0, 4500.0)
MID_ANCHOR = AnchorSpec("anchor70", 7000.0, 0.1, 8000.0, 9000.0)
ANCHORS: tuple[AnchorSpec, ...] = (LOWER_ANCHOR, MID_ANCHOR)


def design_lowpass(spec: AnchorSpec, sample_rate: int) -> np.ndarray:
    """Odd-length linear-phase FIR taps meeting ``spec`` at ``sample_rate``."""
    from scipy.signal import firwin, kaiserord

    nyquist = sample_rate / 2.0
    if spec.stop25_hz >= nyquist:
        raise ValueError(f"sample rate {sample_rate} Hz is too low for a {spec.name} anchor")
    width = (spec.stop25_hz - spec.passband_hz) / nyquist
    numtaps, beta = kaiserord(STOPBAND_DB, width)
    numtaps |= 1  # odd: a whole-sample delay, removed exactly
    cutoff = (spec.passband_hz + spec.stop25_hz) / 2.0
    return firwin(numtaps, cutoff, window=("kaiser", beta), fs=sample_rate)


def response_db(taps: np.ndarray, sample_rate: int, frequencies: np.ndarray) -> np.ndarray:
    """Magnitude response of ``taps`` in dB at ``frequencies`` (Hz)."""
    from scipy.signal import freqz

    _, h = freqz(taps, worN=np.asarray(frequencies, dtype=float), fs=sample_rate)
    return 20.0 * np.log10(np.maximum(np.abs(h), 1e-12))


def spec_violations(taps: np.ndarray, sample_rate: int, spec: AnchorSpec) -> list[str]:
    """What in ``spec`` the filter fails (empty when it complies), on a 1 Hz grid."""
    grid = np.arange(0.0, sample_rate / 2.0, 1.0)
    db = response_db(taps, sample_rate, grid)
    problems = []
    passband = db[grid <= spec.passband_hz]
    if np.max(np.abs(passband)) > spec.ripple_db:
        problems.append(f"pass-band ripple {np.max(np.abs(passband)):.3f} dB")
    for start, floor in ((spec.stop25_hz, -25.0), (spec.stop50_hz, -50.0)):
        worst = np.max(db[grid >= start])
        if worst > floor:
            problems.append(f"{worst:.1f} dB at or above {start:.0f} Hz (limit {floor:.0f} dB)")
    return problems


def lowpass(signal: np.ndarray, spec: AnchorSpec, sample_rate: int) -> np.ndarray:
    """``signal`` ``(n, channels)`` low-passed to ``spec``, same length, no delay."""
    from scipy.signal import oaconvolve

    taps = design_lowpass(spec, sample_rate)
    out = oaconvolve(signal, taps[:, None], mode="full", axes=0)
    delay = (len(taps) - 1) // 2
    return out[delay : delay + len(signal)].astype(signal.dtype)
