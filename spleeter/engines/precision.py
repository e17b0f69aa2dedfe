"""Reduced-precision variants of an exported ONNX model, made once and cached beside it.

- ``float16``: every float tensor in half precision, inputs and outputs kept float32 (ONNX
  Runtime's own converter); fast on CUDA, no faster than float32 on a CPU.
- ``int8``: weight-only quantisation. Each convolution kernel is stored as int8 with one float
  scale per output channel (symmetric, ``round(w / scale)``, ``scale = max|w| / 127``) and a
  ``DequantizeLinear`` in front of the convolution, so the file is a quarter of the size and
  needs no calibration data; the arithmetic stays float32.
- ``bfloat16`` needs no file: OpenVINO runs the float32 model with its bfloat16 hint.

A variant records the fingerprint of the model it was made from, so a re-exported model gets a
fresh variant.
"""

import os
from pathlib import Path
from typing import Any

import numpy as np

from .. import SpleeterError
from ..utils.logging import logger
from . import PRECISIONS
from .onnx_export import (
    METADATA_FINGERPRINT,
    cache_directory,
    damage,
    read_metadata,
    save_onnx,
)

VARIANT_FORMAT = 1
"""Bumped when a variant's conversion changes, so older variants are redone."""
METADATA_PRECISION = "spleeter.precision"
_QUANTISED_OPS = {"Conv": 0, "ConvTranspose": 1}
"""Operators whose weights (input 1) are quantised, and their output-channel axis."""


def variant_path(model_path: str | os.PathLike, precision: str) -> str:
    """The ``precision`` variant of the float32 ``model_path`` (made and cached if needed)."""
    if precision in ("float32", "bfloat16"):
        return str(model_path)
    if precision not in PRECISIONS:
        raise ValueError(f"no {precision} variant is made")
    source = Path(model_path)
    metadata = read_metadata(source)
    tag = f"{metadata.get(METADATA_FINGERPRINT)}-{precision}-{VARIANT_FORMAT}"
    local = source.with_name(f"{source.stem}.{precision}.onnx")
    cached = cache_directory() / f"{tag}.onnx"
    for candidate in (local, cached):
        if (
            candidate.is_file()
            and read_metadata(candidate).get(METADATA_PRECISION) == tag
            and damage(candidate) is None
        ):
            return str(candidate)
    target = local if os.access(source.parent, os.W_OK) else cached
    logger.info(f"Making the {precision} variant of {source} (once; later runs reuse {target})")
    import onnx

    proto = onnx.load(str(source))
    if precision == "float16":
        from onnxruntime.transformers.float16 import convert_float_to_float16

        proto = convert_float_to_float16(proto, keep_io_types=True)
    else:
        quantise_weights(proto)
    for prop in list(proto.metadata_props):
        if prop.key == METADATA_PRECISION:
            proto.metadata_props.remove(prop)
    description = f"{proto.doc_string} ({precision})"
    return str(save_onnx(proto, target, {**metadata, METADATA_PRECISION: tag}, description))


def quantise_weights(proto: Any) -> None:
    """Replace the float kernels of every convolution of ``proto`` by int8 kernels with
    per-output-channel scales and a ``DequantizeLinear`` (in place)."""
    from onnx import helper, numpy_helper

    graph = proto.graph
    initialisers = {tensor.name: tensor for tensor in graph.initializer}
    nodes = []
    done: dict[str, str] = {}
    for node in graph.node:
        axis = _QUANTISED_OPS.get(node.op_type)
        weight = node.input[1] if axis is not None and len(node.input) > 1 else None
        if weight in initialisers and weight not in done:
            kernel = numpy_helper.to_array(initialisers[weight]).astype(np.float32)
            quantised, scale = _symmetric_int8(kernel, axis)
            graph.initializer.remove(initialisers[weight])
            graph.initializer.extend(
                [
                    numpy_helper.from_array(quantised, f"{weight}_int8"),
                    numpy_helper.from_array(scale, f"{weight}_scale"),
                ]
            )
            dequantised = f"{weight}_dequantised"
            nodes.append(
                helper.make_node(
                    "DequantizeLinear",
                    [f"{weight}_int8", f"{weight}_scale"],
                    [dequantised],
                    axis=axis,
                )
            )
            done[weight] = dequantised
        if weight in done:
            node.input[1] = done[weight]
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    if not any(
        entry.domain in ("", "ai.onnx") and entry.version >= 13 for entry in proto.opset_import
    ):
        raise SpleeterError("int8 needs an ONNX model of opset 13 or newer (per-channel scales)")


def _symmetric_int8(kernel: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    other = tuple(dim for dim in range(kernel.ndim) if dim != axis)
    peak = np.abs(kernel).max(axis=other)
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    shape = [1] * kernel.ndim
    shape[axis] = -1
    quantised = np.clip(np.rint(kernel / scale.reshape(shape)), -127, 127).astype(np.int8)
    return quantised, scale
