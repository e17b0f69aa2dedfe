"""ONNX export of an autoencoder's encoder and decoder (``spleeter pretrain --export``).

Two graphs in the model folder: ``encoder.onnx`` (``audio (batch, samples, channels)`` ->
``mean (batch, frames, dimension)``, samples a multiple of the hop) and ``decoder.onnx``
(``latent`` -> ``audio``), each with the sidecar metadata of :mod:`.onnx_export`. The tests
check that ONNX Runtime agrees with TensorFlow within 1e-4.
"""

import json
from pathlib import Path
from typing import Any

from ..model.checkpoint import find_checkpoint
from ..utils.logging import logger
from .onnx_export import DEFAULT_OPSET, convert_function, save_onnx


def export_autoencoder(
    params: dict[str, Any], model_dir: str, opset: int = DEFAULT_OPSET
) -> list[Path]:
    """Write ``encoder.onnx`` and ``decoder.onnx`` into ``model_dir``; return their paths."""
    from ..model.autoencoder import LoadedAutoencoder
    from .tensorflow import import_tensorflow

    tf = import_tensorflow()
    checkpoint = find_checkpoint(model_dir)
    model = LoadedAutoencoder(params, model_dir)
    settings = model.settings
    parts = {
        "encoder": (model.encoder, (None, None, settings.channels), "audio", "mean"),
        "decoder": (model.decoder, (None, None, settings.dimension), "latent", "audio"),
    }
    written = []
    for name, (network, shape, input_name, output_name) in parts.items():
        spec = tf.TensorSpec(shape, tf.float32, input_name)

        def forward(x: Any, network: Any = network, name: str = name) -> list[Any]:
            out = network(x, training=False)
            return [out[0]] if name == "encoder" else [out]

        function = tf.function(forward, input_signature=[spec], autograph=False)
        logger.info(f"Exporting the {name} of {checkpoint} to ONNX (opset {opset})")
        proto = convert_function(function, spec, opset, [output_name], checkpoint)
        metadata = {
            "spleeter.config": json.dumps(params),
            "spleeter.part": name,
            "spleeter.hop": str(settings.hop),
            "spleeter.checkpoint": Path(checkpoint).name,
        }
        written.append(
            save_onnx(proto, Path(model_dir) / f"{name}.onnx", metadata, f"SEANet {name}")
        )
    return written
