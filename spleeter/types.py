"""Type aliases shared by the public API (kept for upstream compatibility)."""

from typing import Any

import numpy as np

AudioDescriptor = Any
"""Anything an audio adapter can load: for the ffmpeg adapter, a path."""

Signal = tuple[np.ndarray, float]
"""A ``(waveform, sample_rate)`` pair; the waveform is ``(n_samples, n_channels)``."""
