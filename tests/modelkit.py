"""Helpers that make small upstream-format model directories for tests.

Weights are random but deterministic, batch-norm statistics included (so that a test can tell
moving statistics from batch statistics), and saved with upstream's variable names.
"""

import json
from pathlib import Path
from typing import Any

import numpy as np

TINY_FILTERS = [4, 8, 8, 16, 16, 32]
ACTIVATION_PAIRS = [("LeakyReLU", "ReLU"), ("ReLU", "LeakyReLU"), ("ELU", "ELU")]
"""``(conv_activation, deconv_activation)`` pairs covering every activation a U-Net takes."""


def spectrogram_blocks(params: dict[str, Any], blocks: int = 2, seed: int = 0) -> np.ndarray:
    """Random non-negative magnitude blocks ``(blocks, T, F, n_channels)`` for ``params``."""
    rng = np.random.default_rng(seed)
    shape = (blocks, params["T"], params["F"], params["n_channels"])
    return (rng.standard_normal(shape) ** 2).astype(np.float32)


def tiny_config(base: dict[str, Any], model_dir: Path, **overrides: Any) -> dict[str, Any]:
    """A copy of ``base`` with tiny filters, ``T`` = 64 and ``model_dir`` set."""
    config = json.loads(json.dumps(base))
    config["model_dir"] = str(model_dir)
    config["T"] = 64
    config["model"]["params"] = {**config["model"]["params"], "conv_n_filters": TINY_FILTERS}
    config.update(overrides)
    return config


def randomise(model: Any, seed: int) -> None:
    """Give every variable of ``model`` random, plausible values."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        shape = tuple(variable.shape)
        name = variable.path
        if name.endswith("moving_variance"):
            value = rng.uniform(0.5, 2.0, shape)
        elif name.endswith("moving_mean"):
            value = rng.normal(0.0, 0.2, shape)
        elif name.endswith("gamma"):
            value = rng.uniform(0.5, 1.5, shape)
        elif name.endswith(("beta", "bias")):
            value = rng.normal(0.0, 0.05, shape)
        else:
            fan_in = int(np.prod(shape[:-1])) or 1
            value = rng.uniform(-1, 1, shape) * np.sqrt(6.0 / fan_in)
        variable.assign(value.astype(np.float32))


def write_model(config: dict[str, Any], seed: int = 0, step: int = 10) -> Any:
    """Build ``config``'s model, randomise it and save it into ``config['model_dir']``."""
    from spleeter.engines.tensorflow import import_tensorflow
    from spleeter.model import build_model
    from spleeter.model.checkpoint import save_checkpoint

    import_tensorflow()
    model = build_model(config)
    randomise(model, seed)
    save_checkpoint(model, config["model_dir"], step)
    return model


def write_config(config: dict[str, Any], path: Path) -> str:
    path.write_text(json.dumps(config, indent=2))
    return str(path)


def read_scalars(directory: Path) -> dict[str, list[tuple[int, float]]]:
    """Scalars of the TensorBoard event files in ``directory`` (not recursive)."""
    import tensorflow as tf

    found: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(directory.glob("events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(str(path)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                array = tf.make_ndarray(value.tensor)
                if array.size == 1:  # scalars only (not images or histograms)
                    found.setdefault(value.tag, []).append((event.step, float(array)))
    return found


def scalars(directory: Path, tag: str) -> list[float]:
    """The values of one TensorBoard scalar in ``directory``'s event files, in step order."""
    return [value for _, value in sorted(read_scalars(directory).get(tag, []))]
