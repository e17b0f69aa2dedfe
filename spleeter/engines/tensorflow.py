"""The TensorFlow (Keras 3) engine: the configuration's Keras model with upstream weights."""

import os
from contextlib import contextmanager
from typing import Any

import numpy as np

from ..model import build_model, model_type
from ..model.checkpoint import find_checkpoint, load_checkpoint
from ..utils.logging import logger
from .batching import DEFAULT_BATCH_BLOCKS, in_batches


@contextmanager
def _quiet_native_stderr():
    """Silence what TensorFlow's C++ runtime prints on import (absl/oneDNN/CUDA probing),
    unless debug logging is on."""
    if logger.isEnabledFor(10):
        yield
        return
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def import_tensorflow() -> Any:
    """Import TensorFlow quietly (its import prints several lines of C++ logs)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with _quiet_native_stderr():
        import keras  # noqa: F401
        import tensorflow
    return tensorflow


def _select_device(tf: Any, device: str) -> str:
    """Make TensorFlow run on ``device`` (auto, cpu or cuda); return where it will run."""
    from .. import SpleeterError

    gpus = tf.config.list_physical_devices("GPU")
    if device == "cuda" and not gpus:
        raise SpleeterError(
            "--device cuda: TensorFlow sees no GPU here (CUDA build and driver needed); "
            "use --device cpu"
        )
    if device == "cpu" and gpus:
        try:
            tf.config.set_visible_devices([], "GPU")
        except RuntimeError as error:  # devices already initialised in this process
            raise SpleeterError(f"--device cpu: cannot hide the GPU any more ({error})") from error
        return "CPU"
    return f"GPU ({gpus[0].name})" if gpus else "CPU"


class KerasRunner:
    """Runs a Keras model on batches of blocks ``(n, T, bins, channels)``, ``batch_blocks`` at
    a time (bounded activation memory), through one traced graph; outputs ``{name: array}``
    (a model with a single unnamed output gives ``{"output": ...}``)."""

    def __init__(
        self, model: Any, bins: int, channels: int, batch_blocks: int = DEFAULT_BATCH_BLOCKS
    ) -> None:
        tf = import_tensorflow()
        self.model = model
        self.batch_blocks = max(1, int(batch_blocks))
        signature = tf.TensorSpec((None, None, bins, channels), tf.float32)
        self._forward = tf.function(self._predict, input_signature=[signature], autograph=False)

    def _predict(self, blocks: Any) -> Any:
        return self.model(blocks, training=False)

    def _run_batch(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        outputs = self._forward(batch)
        if not isinstance(outputs, dict):
            outputs = {"output": outputs}
        return {name: value.numpy() for name, value in outputs.items()}

    def __call__(self, blocks: np.ndarray) -> dict[str, np.ndarray]:
        return in_batches(blocks, self.batch_blocks, self._run_batch)


class TensorFlowEngine:
    """Runs the Keras model of a configuration, with weights from an upstream-format checkpoint."""

    name = "tensorflow"

    def __init__(
        self,
        params: dict[str, Any],
        model_dir: str,
        batch_blocks: int = DEFAULT_BATCH_BLOCKS,
        device: str = "auto",
    ) -> None:
        tf = import_tensorflow()
        self.device = _select_device(tf, device)
        self.checkpoint = find_checkpoint(model_dir)
        self.model = build_model(params)
        unused = load_checkpoint(self.model, self.checkpoint)
        logger.debug(
            f"Loaded {model_type(params)} from {self.checkpoint} "
            f"({len(self.model.weights)} variables; unused in checkpoint: {len(unused)})"
        )
        self._run = KerasRunner(self.model, params["F"], params["n_channels"], batch_blocks)

    def __call__(self, spectrogram: np.ndarray) -> dict[str, np.ndarray]:
        return self._run(spectrogram)
