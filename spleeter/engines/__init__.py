"""Inference engines: run a configuration's network on batches of magnitude spectrograms.

An engine is built from a configuration and a model directory, and called with the mixture's
magnitude blocks ``(n_blocks, T, F, n_channels)`` float32; it returns the network's magnitude
estimates ``{"<instrument>_spectrogram": array of the same shape}``. Everything before and after
the network (STFT, masks, Wiener filter, inverse STFT) is shared by every engine.
"""

from typing import Any, Protocol

import numpy as np


class Engine(Protocol):
    """What the separator needs from an inference engine."""

    name: str
    """Short identifier, e.g. ``tensorflow``."""

    def __call__(self, spectrogram: np.ndarray) -> dict[str, np.ndarray]:
        """Magnitude estimates for a batch of mixture magnitude blocks."""
        ...


def create_engine(params: dict[str, Any], model_dir: str) -> Engine:
    """The engine that runs ``params``' model with the weights found in ``model_dir``."""
    from .tensorflow import TensorFlowEngine

    return TensorFlowEngine(params, model_dir)
