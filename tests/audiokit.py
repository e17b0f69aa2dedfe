"""Plain helpers that test modules import by name (``conftest`` is not importable: pytest
loads several files of that name, and which one ``import conftest`` finds depends on order)."""

import subprocess
from importlib.util import find_spec
from pathlib import Path

import numpy as np

STEM_NAMES = ("mixture", "drums", "bass", "other", "vocals")
"""Stream order inside a MUSDB ``.stem.mp4`` file."""

AUTO_ON_CPU = "openvino" if find_spec("openvino") else "onnxruntime"
"""The runtime ``--engine auto`` picks on the CPU for an ONNX model (OpenVINO when installed)."""


def decode_stream(path: Path, stream: int, sample_rate: int = 44100) -> np.ndarray:
    """Decode one audio stream of a file with ffmpeg into a float32 ``(n, 2)`` array."""
    command = [
        "ffmpeg",
        "-nostdin",
        "-v",
        "error",
        "-i",
        str(path),
        "-map",
        f"0:a:{stream}",
        "-f",
        "f32le",
        "-ar",
        str(sample_rate),
        "-ac",
        "2",
        "pipe:",
    ]
    raw = subprocess.run(command, check=True, capture_output=True).stdout
    return np.frombuffer(raw, dtype="<f4").reshape(-1, 2).copy()
