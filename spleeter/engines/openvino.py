"""The OpenVINO engine: a network compiled by OpenVINO for the CPU.

It compiles the U-Nets from their checkpoint without any ONNX file
(:mod:`.openvino_network`), and the other networks from the same ``model.onnx`` as ONNX
Runtime. It is the engine that runs reduced precision on a CPU: ``bfloat16`` on CPUs with
AVX-512 BF16 or AMX (OpenVINO's inference precision hint; weights and activations in
bfloat16, accumulation in float32).
"""

import os
from typing import Any

import numpy as np

from .. import SpleeterError
from ..utils.extras import install_hint
from ..utils.logging import logger
from .batching import DEFAULT_BATCH_BLOCKS, in_batches

HINTS = {"float32": "f32", "bfloat16": "bf16", "int8": "f32"}
"""OpenVINO's ``INFERENCE_PRECISION_HINT`` for each precision it runs on a CPU (``int8`` is
the weight-quantised model, its arithmetic float32)."""


class OpenVinoLoadError(SpleeterError):
    """OpenVINO could not read or compile a network (not a refused option)."""


def import_openvino() -> Any:
    try:
        import openvino
    except ImportError as error:
        raise SpleeterError(
            f"The openvino engine needs OpenVINO: {install_hint('openvino')}"
        ) from error
    return openvino


def cpu_capabilities(core: Any = None) -> list[str]:
    """What OpenVINO says this CPU can run (``FP32``, ``BF16``, ``INT8``...)."""
    core = core or import_openvino().Core()
    return list(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


class OpenVinoEngine:
    """Runs a network with OpenVINO on the CPU at ``precision``.

    ``model``: a model file (ONNX, or OpenVINO IR ``.xml``) or an ``openvino.Model``;
    ``cache_dir``: OpenVINO's model cache for a file (compiled once, then loaded from there).
    """

    name = "openvino"
    device = "cpu"

    def __init__(
        self,
        model: "str | os.PathLike | Any",
        precision: str = "float32",
        batch_blocks: int = DEFAULT_BATCH_BLOCKS,
        cache_dir: str | None = None,
    ) -> None:
        openvino = import_openvino()
        if precision not in HINTS:
            raise SpleeterError(
                f"--precision {precision}: OpenVINO runs {', '.join(HINTS)} on the CPU"
            )
        core = openvino.Core()
        if precision == "bfloat16" and "BF16" not in cpu_capabilities(core):
            raise SpleeterError(
                "--precision bfloat16: this CPU has no bfloat16 arithmetic (AVX-512 BF16 or "
                "AMX); use float32 or int8"
            )
        config = {"INFERENCE_PRECISION_HINT": HINTS[precision], "PERFORMANCE_HINT": "LATENCY"}
        threads = os.environ.get("SPLEETER_THREADS")
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        if isinstance(model, str | os.PathLike):
            model = os.fspath(model)
            if cache_dir is not None:
                config["CACHE_DIR"] = cache_dir
        what = model if isinstance(model, str) else "the network built from its checkpoint"
        try:
            self.compiled = core.compile_model(model, "CPU", config)
        except Exception as error:  # OpenVINO raises RuntimeError and its own types
            raise OpenVinoLoadError(f"OpenVINO cannot load {what}: {error}") from error
        self.provider = "CPU"
        self.output_names = [output.get_any_name() for output in self.compiled.outputs]
        self.request = self.compiled.create_infer_request()
        self.batch_blocks = max(1, int(batch_blocks))
        logger.debug(f"OpenVINO model compiled for the CPU ({precision}) from {what}")

    def _run_batch(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        results = self.request.infer([batch])
        # copies: the request reuses its output buffers on the next call
        return {
            name: np.array(results[output], copy=True)
            for output, name in zip(self.compiled.outputs, self.output_names, strict=True)
        }

    def __call__(self, spectrogram: np.ndarray) -> dict[str, np.ndarray]:
        return in_batches(spectrogram, self.batch_blocks, self._run_batch)
