"""Helpers of the listening-test tests."""

from pathlib import Path

import numpy as np

RATE = 44100
TRACK = "Falcon 69"
STEMS = ("vocals", "drums")


def write(path: Path, signal: np.ndarray, rate: int = RATE) -> Path:
    import soundfile

    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), signal, rate, subtype="FLOAT")
    return path
