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


ENGINES = ("auto", "tensorflow", "onnx")
DEVICES = ("auto", "cpu", "cuda")


def onnxruntime_available() -> bool:
    """Whether ONNX Runtime can be imported (the ``onnx`` or ``gpu`` extra)."""
    from importlib.util import find_spec

    return find_spec("onnxruntime") is not None


def create_engine(
    params: dict[str, Any], model_dir: str, engine: str = "auto", device: str = "auto"
) -> Engine:
    """The engine that runs ``params``' model with the weights found in ``model_dir``.

    ``engine``: ``tensorflow``; ``onnx`` (ONNX Runtime, exporting the model to ONNX on first use
    and caching it); or ``auto``: ONNX Runtime when it is installed and the model has an
    up-to-date ONNX export or a network the registry can build as ONNX without TensorFlow (the
    U-Nets: converted on first use in a few seconds, then cached), else TensorFlow. ``device``:
    ``cpu``, ``cuda`` (an error if the engine cannot run there) or ``auto``. The engine and
    device that actually run are logged.
    """
    from .. import SpleeterError
    from ..utils.logging import logger

    if engine not in ENGINES:
        raise SpleeterError(f"Unknown engine {engine!r} (choose from {', '.join(ENGINES)})")
    if device not in DEVICES:
        raise SpleeterError(f"Unknown device {device!r} (choose from {', '.join(DEVICES)})")
    model_path = None
    if engine in ("auto", "onnx") and (engine == "onnx" or onnxruntime_available()):
        from ..model import architecture
        from .onnx_export import onnx_model_for

        # Exporting without TensorFlow takes seconds, so auto does it; a tf2onnx trace takes a
        # minute and gigabytes, so auto leaves that to -e onnx or spleeter export.
        export = engine == "onnx" or architecture(params).onnx_graph is not None
        model_path = onnx_model_for(params, model_dir, export=export)
    if model_path is not None:
        from .onnxruntime import OnnxRuntimeEngine

        runner: Engine = OnnxRuntimeEngine(model_path, device)
        where = runner.provider  # type: ignore[attr-defined]
    else:
        from .tensorflow import TensorFlowEngine

        runner = TensorFlowEngine(params, model_dir, device=device)
        where = runner.device  # type: ignore[attr-defined]
    logger.info(f"Separating with {runner.name} on {where}")
    return runner
