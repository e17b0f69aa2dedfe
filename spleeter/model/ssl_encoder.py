"""The SSL encoder's networks: the masked-prediction model and the feature extractor."""

from typing import Any

from ..audio.features import encoder_mel_matrix
from .encoder_config import EncoderConfig
from .encoder_folder import EncoderAudio
from .layers.ssl_encoder import EncoderNetwork, LogMel

HEAD_NAME = "ssl_head"


def build_pretraining_model(config: EncoderConfig, units: int) -> tuple[Any, Any]:
    """The masked-prediction model and its encoder layer.

    Inputs ``log_mel`` ``(batch, T, n_mels)`` and ``span_mask`` ``(batch, T)`` bool; output the
    unit logits ``(batch, T, units)`` (float32) of a linear head (``ssl_head``) on the last
    hidden state.
    """
    import keras

    features = keras.Input((None, config.n_mels), name="log_mel", dtype="float32")
    mask = keras.Input((None,), name="span_mask", dtype="bool")
    network = EncoderNetwork(config)
    hidden = network(features, span_mask=mask)
    logits = keras.layers.Dense(units, name=HEAD_NAME, dtype="float32")(hidden[-1])
    return keras.Model([features, mask], logits, name="ssl_pretraining"), network


def build_feature_model(
    config: EncoderConfig, audio: EncoderAudio, layer: int | None = None
) -> tuple[Any, Any]:
    """Magnitude ``(batch, T, F, C)`` -> hidden state ``layer`` ``(batch, T, dim)``: the
    log-mel front end and the encoder exactly as the fused separator runs them."""
    import keras

    layer = config.layers if layer is None else int(layer)
    magnitude = keras.Input((None, audio.F, audio.n_channels), name="magnitude", dtype="float32")
    features = LogMel(encoder_mel_matrix(config, audio.F), name="log_mel")(magnitude)
    network = EncoderNetwork(config, input_bins=audio.F)
    hidden = network(features, depth=layer, training=False)
    return keras.Model(magnitude, hidden[-1], name="ssl_features"), network
