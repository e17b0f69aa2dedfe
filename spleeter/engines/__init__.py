"""Inference engines: run a configuration's network on batches of magnitude spectrograms.

An engine is built from a configuration and a model directory, and called with the mixture's
magnitude blocks ``(n_blocks, T, F, n_channels)`` float32; it returns the network's magnitude
estimates ``{"<instrument>_spectrogram": array of the same shape}``. Everything before and after
the network (STFT, masks, Wiener filter, inverse STFT) is shared by every engine.
"""

import os
from typing import Any, Protocol

import numpy as np


class Engine(Protocol):
    """What the separator needs from an inference engine."""

    name: str
    """Short identifier, e.g. ``tensorflow``."""

    def __call__(self, spectrogram: np.ndarray) -> dict[str, np.ndarray]:
        """Magnitude estimates for a batch of mixture magnitude blocks."""
        ...


ENGINES = ("auto", "tensorflow", "onnx", "openvino")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("float32", "bfloat16", "float16", "int8")


def onnxruntime_available() -> bool:
    """Whether ONNX Runtime can be imported (a dependency; the gpu extra for CUDA)."""
    from importlib.util import find_spec

    return find_spec("onnxruntime") is not None


def openvino_available() -> bool:
    """Whether OpenVINO can be imported (the openvino extra)."""
    from importlib.util import find_spec

    return find_spec("openvino") is not None


def _openvino_is_the_cpu_default(device: str) -> bool:
    """Whether ``auto`` runs float32 with OpenVINO: when it is installed and the network runs
    on the CPU (measured 1.15x ONNX Runtime's speed on the 4-stem U-Net, same outputs within
    5e-6: docs/performance.md); a CUDA device goes to ONNX Runtime's CUDA provider."""
    if device == "cuda" or not openvino_available():
        return False
    if device == "cpu" or not onnxruntime_available():
        return True
    from .onnxruntime import CUDA, import_onnxruntime

    return CUDA not in import_onnxruntime().get_available_providers()


def _runtime(engine: str, device: str, precision: str) -> str:
    """Which runtime runs ``precision`` for the requested ``engine`` and ``device``:
    ``tensorflow``, ``onnxruntime`` or ``openvino`` (a one-line error when none can)."""
    from .. import SpleeterError

    if precision == "float32":
        if engine == "auto" and _openvino_is_the_cpu_default(device):
            return "openvino"
        return {"openvino": "openvino", "tensorflow": "tensorflow"}.get(engine, "onnxruntime")
    if engine == "tensorflow":
        raise SpleeterError(
            f"--precision {precision} runs on the exported ONNX model: use --engine auto"
        )
    if precision == "bfloat16":
        if engine == "onnx" or device == "cuda":
            raise SpleeterError(
                "--precision bfloat16 runs with OpenVINO on the CPU (--engine auto or openvino); "
                "on CUDA use --precision float16"
            )
        return "openvino"
    if precision == "float16":
        if engine == "openvino":
            raise SpleeterError(
                "--precision float16 runs with ONNX Runtime (--engine auto or onnx); on a CPU "
                "bfloat16 is the fast reduced precision"
            )
        return "onnxruntime"
    # int8: OpenVINO runs the quantised model faster on a CPU when it is installed
    if engine == "openvino" or (engine == "auto" and device != "cuda" and openvino_available()):
        return "openvino"
    return "onnxruntime"


def create_engine(
    params: dict[str, Any],
    model_dir: str,
    engine: str = "auto",
    device: str = "auto",
    precision: str = "float32",
) -> Engine:
    """The engine that runs ``params``' model with the weights found in ``model_dir``.

    ``engine``: ``tensorflow``; ``onnx`` (ONNX Runtime, exporting the model to ONNX on first use
    and caching it); ``openvino`` (OpenVINO on the CPU, same export); or ``auto``: ONNX Runtime
    when it is installed and the model has an up-to-date ONNX export or a network the registry
    can build as ONNX without TensorFlow (the U-Nets: converted on first use in a few seconds,
    then cached), else TensorFlow; on the CPU that ONNX model runs with OpenVINO instead when
    it is installed (faster, same numbers within 5e-6). ``device``: ``cpu``, ``cuda`` (an error
    if the engine cannot run there) or ``auto``. ``precision``: ``float32``; ``bfloat16``
    (OpenVINO, CPUs with AVX-512 BF16 or AMX); ``float16`` (ONNX Runtime; fast on CUDA);
    ``int8`` (weight-only quantised model, OpenVINO when installed, else ONNX Runtime). The
    engine, device and precision that actually run are logged.
    """
    from .. import SpleeterError
    from ..utils.logging import logger

    if engine not in ENGINES:
        raise SpleeterError(f"Unknown engine {engine!r} (choose from {', '.join(ENGINES)})")
    if device not in DEVICES:
        raise SpleeterError(f"Unknown device {device!r} (choose from {', '.join(DEVICES)})")
    if precision not in PRECISIONS:
        raise SpleeterError(
            f"Unknown precision {precision!r} (choose from {', '.join(PRECISIONS)})"
        )
    runtime = _runtime(engine, device, precision)
    if runtime == "openvino" and device == "cuda":
        raise SpleeterError("--device cuda: the openvino engine runs on the CPU here")
    if (
        runtime == "onnxruntime"
        and engine == "auto"
        and precision == "float32"
        and not onnxruntime_available()
    ):
        runtime = "tensorflow"  # float32 without ONNX Runtime installed: upstream's engine
    runner: Engine | None = None
    if runtime == "openvino" and precision in ("float32", "bfloat16"):
        try:
            runner = _openvino_from_checkpoint(params, model_dir, precision)
        except SpleeterError as error:
            if engine != "auto" or precision != "float32" or not onnxruntime_available():
                raise
            # auto's own choice: a network OpenVINO cannot compile still runs
            logger.debug(f"{error}; running ONNX Runtime instead")
            runtime = "onnxruntime"
    model_path = None
    if runtime != "tensorflow" and runner is None:
        from ..model import architecture
        from .onnx_export import onnx_model_for

        # Exporting without TensorFlow takes seconds, so auto does it; a tf2onnx trace takes a
        # minute and gigabytes, so auto leaves that to an explicit choice or spleeter export.
        export = (
            engine != "auto" or precision != "float32" or architecture(params).graph is not None
        )
        model_path = onnx_model_for(params, model_dir, export=export)
    if runner is not None:
        where = runner.provider  # type: ignore[attr-defined]
    elif model_path is None:
        from .tensorflow import TensorFlowEngine

        runner = TensorFlowEngine(params, model_dir, device=device)
        where = runner.device  # type: ignore[attr-defined]
    else:
        from .precision import variant_path

        model_path = variant_path(model_path, precision)
        if runtime == "openvino":
            from .openvino import OpenVinoEngine

            try:
                runner = OpenVinoEngine(model_path, precision)
            except SpleeterError as error:
                if engine != "auto" or precision != "float32" or not onnxruntime_available():
                    raise
                # auto's own choice: a network OpenVINO cannot compile still runs
                logger.debug(f"{error}; running ONNX Runtime instead")
        if runner is None:
            from .onnxruntime import OnnxRuntimeEngine

            runner = OnnxRuntimeEngine(model_path, device)
        where = runner.provider  # type: ignore[attr-defined]
    if precision != "float32":
        where = f"{where}, {precision}"
    logger.info(f"Separating with {runner.name} on {where}")
    return runner


def _openvino_from_checkpoint(
    params: dict[str, Any], model_dir: str, precision: str
) -> Engine | None:
    """OpenVINO running the network built straight from the checkpoint (no ONNX file), when
    the registry describes it as a graph and the folder has a checkpoint; else None (the
    caller goes through the ONNX export). A cached network OpenVINO cannot read (damaged on
    disk) is built again, once."""
    from ..utils.logging import logger
    from .openvino import OpenVinoEngine, OpenVinoLoadError, import_openvino
    from .openvino_network import cached_network, compiled_cache, forget_network

    openvino = import_openvino()
    network = cached_network(params, model_dir, openvino)
    if network is None:
        return None
    try:
        return OpenVinoEngine(network, precision, cache_dir=compiled_cache(network))
    except OpenVinoLoadError as error:
        if not isinstance(network, os.PathLike):
            raise
        logger.warning(f"{error}; building the network again")
        forget_network(network)
    network = cached_network(params, model_dir, openvino)
    return OpenVinoEngine(network, precision, cache_dir=compiled_cache(network))
