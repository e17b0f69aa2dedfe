"""The ONNX Runtime engine: the exported network on the CPU or CUDA execution provider."""

import os
from typing import Any

import numpy as np

from .. import SpleeterError
from ..utils.extras import install_hint
from ..utils.logging import logger
from .batching import DEFAULT_BATCH_BLOCKS, in_batches

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


def import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as error:
        raise SpleeterError(
            f"The onnx engine needs ONNX Runtime: {install_hint('onnx')} (the gpu extra, "
            "onnxruntime-gpu, for CUDA)"
        ) from error
    return onnxruntime


def providers_for(device: str, available: list[str]) -> list[str]:
    """Execution providers to ask for on ``device`` (``auto``, ``cpu`` or ``cuda``)."""
    if device == "cpu":
        return [CPU]
    if device == "cuda":
        if CUDA not in available:
            raise SpleeterError(
                "--device cuda: ONNX Runtime has no CUDA execution provider here (available: "
                f"{', '.join(available)}); on a machine with an NVIDIA GPU, "
                f"{install_hint('gpu')} (onnxruntime-gpu), or use --device cpu"
            )
        return [CUDA, CPU]
    return [CUDA, CPU] if CUDA in available else [CPU]


class OnnxRuntimeEngine:
    """Runs an exported ONNX network; ``provider`` says where it actually runs."""

    name = "onnxruntime"

    def __init__(
        self, model_path: str, device: str = "auto", batch_blocks: int = DEFAULT_BATCH_BLOCKS
    ) -> None:
        ort = import_onnxruntime()
        options = ort.SessionOptions()
        options.log_severity_level = 3
        # Busy-waiting worker threads steal the cores that the STFT and the encoders use
        # between network calls (measured: about 25 % faster under load without it).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        threads = os.environ.get("SPLEETER_THREADS")
        if threads:
            options.intra_op_num_threads = int(threads)
        requested = providers_for(device, ort.get_available_providers())
        try:
            self.session = ort.InferenceSession(model_path, options, providers=requested)
        except Exception as error:  # ORT raises its own exception types
            raise SpleeterError(f"ONNX Runtime cannot load {model_path}: {error}") from error
        self.provider = self.session.get_providers()[0]
        if device == "cuda" and self.provider != CUDA:
            raise SpleeterError(
                "--device cuda: the CUDA execution provider failed to start (missing CUDA/cuDNN "
                "libraries?); ONNX Runtime would have fallen back to the CPU"
            )
        self.device = "cuda" if self.provider == CUDA else "cpu"
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [output.name for output in self.session.get_outputs()]
        self.batch_blocks = max(1, int(batch_blocks))
        logger.debug(f"ONNX Runtime session on {self.provider} for {model_path}")

    def _run_batch(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        values = self.session.run(None, {self.input_name: batch})
        return dict(zip(self.output_names, values, strict=True))

    def __call__(self, spectrogram: np.ndarray) -> dict[str, np.ndarray]:
        return in_batches(spectrogram, self.batch_blocks, self._run_batch)
