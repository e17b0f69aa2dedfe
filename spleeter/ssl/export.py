"""ONNX export of an SSL encoder alone, for feature extraction with ONNX Runtime.

The graph takes the mixture magnitude blocks ``magnitude`` ``(batch, frames, F, n_channels)``
(the separator's network input: ``|STFT|`` of upstream's grid, first ``F`` bins) and returns
``features`` ``(batch, frames, dim)``, the log-mel front end included; the STFT stays outside,
as for the separators. (The fused separator needs no separate export: ``spleeter export``
exports its whole network, encoder included.)
"""

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from .. import SpleeterError
from ..model.encoder_config import EncoderConfig
from ..model.encoder_folder import (
    EncoderAudio,
    describe,
    description_config,
    read_description,
    variables_view,
)
from ..model.ssl_encoder import build_feature_model
from ..utils.logging import logger

ONNX_FILENAME = "encoder.onnx"

METADATA_ENCODER = "spleeter.ssl_encoder"
METADATA_FINGERPRINT = "spleeter.fingerprint"
METADATA_LAYER = "spleeter.layer"


def export_encoder_onnx(
    config: EncoderConfig,
    audio: EncoderAudio,
    checkpoint: str,
    output: str | os.PathLike,
    layer: int | None = None,
    opset: int = 17,
) -> Path:
    """Write the ONNX graph magnitude -> hidden state ``layer`` (default: the last) of the
    encoder with the weights of ``checkpoint``; atomically renamed into ``output``.

    Raises:
        SpleeterError: the checkpoint does not fit or the conversion fails.
    """
    from ..engines.onnx_export import convert_function, save_onnx
    from ..engines.tensorflow import import_tensorflow
    from ..model.checkpoint import load_checkpoint

    tf = import_tensorflow()
    layer = config.layers if layer is None else int(layer)
    model, network = build_feature_model(config, audio, layer)
    load_checkpoint(variables_view(network), checkpoint)
    spec = tf.TensorSpec((None, None, audio.F, audio.n_channels), tf.float32, "magnitude")

    def features(magnitude: Any) -> Any:
        return model(magnitude, training=False)

    function = tf.function(features, input_signature=[spec], autograph=False)
    logger.info(f"Exporting the SSL encoder (layer {layer}) from {checkpoint} to ONNX")
    proto = convert_function(function, spec, opset, ["features"], f"the encoder {checkpoint}")
    metadata = {
        METADATA_ENCODER: json.dumps(describe(config, audio)),
        METADATA_FINGERPRINT: checkpoint_fingerprint(checkpoint, layer),
        METADATA_LAYER: str(layer),
    }
    return save_onnx(proto, output, metadata, f"Spleeter SSL encoder, hidden state {layer}")


def export_encoder_directory(
    directory: str | os.PathLike, output: str | os.PathLike | None = None, layer: int | None = None
) -> Path:
    """Export the encoder of an encoder directory (default output: ``<dir>/encoder.onnx``)."""
    from ..model.checkpoint import find_checkpoint

    config, audio = description_config(read_description(directory))
    target = Path(output) if output is not None else Path(directory) / ONNX_FILENAME
    return export_encoder_onnx(config, audio, find_checkpoint(directory), target, layer)


def read_onnx_fingerprint(path: str | os.PathLike) -> str | None:
    """The checkpoint fingerprint recorded in an encoder export (None if unreadable)."""
    from ..engines.onnx_export import read_metadata

    try:
        return read_metadata(path).get(METADATA_FINGERPRINT)
    except SpleeterError:
        return None


def checkpoint_fingerprint(checkpoint: str, layer: int) -> str:
    """Identifies an encoder's weights (the checkpoint index records every tensor's CRC)."""
    digest = hashlib.sha256(f"ssl-encoder-layer-{layer}".encode())
    digest.update(Path(f"{checkpoint}.index").read_bytes())
    return digest.hexdigest()
