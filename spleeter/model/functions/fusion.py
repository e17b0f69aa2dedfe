"""The SSL-feature-fused separator (``model.type`` ``unet.ssl_unet``).

Inside the graph, from the mixture magnitude ``(batch, T, F, C)`` the builder receives:

1. ``ssl_log_mel``: log-mel frames ``(batch, T, n_mels)`` (the pretraining features, same
   matrix, same STFT frames);
2. ``ssl_encoder``: the SSL encoder, hidden state ``feature_layer`` ``(batch, T, dim)``: one
   feature frame per STFT frame, aligned by construction. Frozen (``encoder_trainable``
   false: not trained, dropout off) or fine-tuned with the separator;
3. per instrument, upstream's U-Net with the features fused in (``fusion``):

   * ``input`` (A-MAE's concatenation of SSL representations with STFT features):
     ``ssl_projection`` maps each frame's features to ``input_channels`` values per mel band,
     spread back onto the linear STFT bins by the mel filterbank (each bin takes the
     weighted mean of the bands covering it) and concatenated to the magnitude as extra input
     channels of the first convolution: frame-accurate, frequency-dependent conditioning;
   * ``bottleneck``: the features averaged over the ``2 ** len(conv_n_filters)`` frames of each
     bottleneck step (``ssl_time_pool``), projected to ``bottleneck_channels``
     (``ssl_bottleneck_projection``), broadcast over frequency and concatenated to the deepest
     convolution's output, where the U-Net's receptive field is widest;
   * ``both`` (the bundled configurations).

The U-Net layers keep upstream's names (``conv2d_{7k}``...), so a checkpoint reads like an
upstream one plus the ``ssl_*`` variables. Params (``model.params``): the U-Net's
(``conv_activation``, ``deconv_activation``, ``conv_n_filters``), ``encoder`` (architecture,
:class:`~spleeter.ssl.config.EncoderConfig`), ``encoder_dir`` (pretrained encoder loaded on a
fresh ``spleeter train``), ``encoder_trainable`` (default false), ``feature_layer`` (default:
the last), ``fusion`` (default ``both``), ``input_channels`` (4), ``bottleneck_channels`` (32),
``fusion_style`` (``concat``, the default, or ``residual``: see :data:`FUSION_STYLES`).
"""

from collections.abc import Iterable
from typing import Any

import keras
import numpy as np

from ... import SpleeterError
from ...audio.features import encoder_mel_matrix
from ..encoder_config import EncoderConfig
from ..layers.ssl_encoder import EncoderNetwork, LogMel
from . import LayerNames
from .unet import apply_unet, conv_filters, time_reduction

FUSIONS = ("input", "bottleneck", "both")
DEFAULT_FUSION = "both"
FUSION_STYLES = ("concat", "residual")
"""``concat``: features concatenated as extra channels (the first design); ``residual``:
added through zero-initialised layers, so that the network is exactly the U-Net until
training moves them, and a trained U-Net's checkpoint initialises it (``--init-from``)."""
DEFAULT_INPUT_CHANNELS = 4
DEFAULT_BOTTLENECK_CHANNELS = 32


def mel_spread_matrix(matrix: np.ndarray) -> np.ndarray:
    """``(n_mels, F)``: each STFT bin's weights over the mel bands covering it, summing to 1
    (0 for bins no band covers)."""
    totals = matrix.sum(axis=1, keepdims=True)
    spread = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
    return np.ascontiguousarray(spread.T, dtype=np.float32)


class MelSpread(keras.layers.Layer):
    """``(batch, T, n_mels * k)`` -> ``(batch, T, F, k)``: per-band values onto STFT bins."""

    def __init__(self, spread: np.ndarray, channels: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spread = np.asarray(spread, dtype=np.float32)
        self.channels = channels

    def call(self, x: Any) -> Any:
        bands = keras.ops.split(x, self.channels, axis=-1)  # k pieces of (batch, T, n_mels)
        spread = keras.ops.cast(self.spread, x.dtype)
        per_bin = [keras.ops.matmul(band, spread) for band in bands]  # (batch, T, F) each
        return keras.ops.stack(per_bin, axis=-1)


class FrequencyBroadcast(keras.layers.Layer):
    """``(batch, T', k)`` -> ``(batch, T', bins, k)``, the same values at every bin."""

    def __init__(self, bins: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bins = bins

    def call(self, x: Any) -> Any:
        ones = keras.ops.ones((1, 1, self.bins, 1), dtype=x.dtype)
        return keras.ops.expand_dims(x, 2) * ones


def fusion_settings(params: dict[str, Any]) -> tuple[str, int, int]:
    """``(fusion, input_channels, bottleneck_channels)`` of the model params."""
    fusion = str(params.get("fusion", DEFAULT_FUSION))
    if fusion not in FUSIONS:
        raise SpleeterError(f"Unknown fusion {fusion!r} (expected one of {', '.join(FUSIONS)})")
    channels = []
    for key, default in (
        ("input_channels", DEFAULT_INPUT_CHANNELS),
        ("bottleneck_channels", DEFAULT_BOTTLENECK_CHANNELS),
    ):
        value = params.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise SpleeterError(f"model.params.{key} must be a positive integer (got {value!r})")
        channels.append(value)
    return fusion, channels[0], channels[1]


def fusion_style(params: dict[str, Any]) -> str:
    style = str(params.get("fusion_style", "concat"))
    if style not in FUSION_STYLES:
        raise SpleeterError(
            f"Unknown fusion_style {style!r} (expected one of {', '.join(FUSION_STYLES)})"
        )
    return style


def build_ssl_unet(input_tensor: Any, instruments: list[str], params: dict[str, Any]) -> dict:
    """The fused separator's outputs ``{"<instrument>_spectrogram": magnitude estimate}``."""
    config = EncoderConfig.from_params(params.get("encoder"))
    fusion, input_channels, bottleneck_channels = fusion_settings(params)
    residual = fusion_style(params) == "residual"
    filters = conv_filters(params)
    n_bins = int(input_tensor.shape[2])
    layer = params.get("feature_layer")
    layer = config.layers if layer is None else int(layer)
    if not 0 <= layer <= config.layers:
        raise SpleeterError(f"model.params.feature_layer must be in 0..{config.layers}")
    matrix = encoder_mel_matrix(config, n_bins)
    log_mel = LogMel(matrix, name="ssl_log_mel")(input_tensor)
    encoder = EncoderNetwork(config, params.get("encoder_dir"), n_bins)
    trainable = bool(params.get("encoder_trainable", False))
    encoder.trainable = trainable  # frozen: not trained, and run in inference mode (no dropout)
    features = encoder(log_mel, depth=layer)[-1]
    encoder.mask_embedding.trainable = False  # only pretraining masks frames

    spread = MelSpread(mel_spread_matrix(matrix), input_channels, name="ssl_mel_spread")
    reduction = time_reduction(params)
    pooled = None
    if fusion in ("bottleneck", "both"):
        pooled = keras.layers.AveragePooling1D(
            reduction, strides=reduction, padding="same", name="ssl_time_pool"
        )(features)
    names = LayerNames()
    outputs = {}
    bins = -(-n_bins // reduction)
    for instrument in instruments:
        extra = first_level = None
        if fusion in ("input", "both"):
            projected = keras.layers.Dense(
                config.n_mels * input_channels, name=names("ssl_projection")
            )(features)
            extra = spread(projected)
            if residual:
                first_level = _input_residual(extra, filters[0], names)
                extra = None
        bottleneck = None
        if pooled is not None:
            if residual:
                bottleneck = _bottleneck_residual(pooled, filters[-1], bins, names)
            else:
                bottleneck = _bottleneck(pooled, bottleneck_channels, bins, names)
        outputs[f"{instrument}_spectrogram"] = apply_unet(
            input_tensor,
            f"{instrument}_spectrogram",
            params,
            names=names,
            extra_inputs=extra,
            bottleneck=bottleneck,
            first_level=first_level,
        )
    return outputs


def _input_residual(extra: Any, n_filters: int, names: Any) -> Any:
    """The hook adding the spread features, through a zero-initialised convolution shaped like
    the U-Net's first one, to that convolution's output."""
    convolution = keras.layers.Conv2D(
        n_filters,
        (5, 5),
        strides=(2, 2),
        padding="same",
        use_bias=False,
        kernel_initializer="zeros",
        name=names("ssl_input_residual"),
    )

    def fuse(convolved: Any) -> Any:
        return keras.layers.Add()([convolved, convolution(extra)])

    return fuse


def _bottleneck_residual(pooled: Any, n_filters: int, bins: int, names: Any) -> Any:
    """The hook adding pooled features, projected by a zero-initialised layer to the deepest
    convolution's channels and broadcast over frequency, to that convolution's output."""
    projection = keras.layers.Dense(
        n_filters,
        use_bias=False,
        kernel_initializer="zeros",
        name=names("ssl_bottleneck_residual"),
    )

    def fuse(deepest: Any) -> Any:
        return keras.layers.Add()([deepest, FrequencyBroadcast(bins)(projection(pooled))])

    return fuse


def _bottleneck(pooled: Any, channels: int, bins: int, names: Any) -> Any:
    """The hook concatenating projected, pooled features to the deepest U-Net level
    (``bins`` wide)."""
    projection = keras.layers.Dense(channels, name=names("ssl_bottleneck_projection"))

    def fuse(deepest: Any) -> Any:
        conditioning = FrequencyBroadcast(bins)(projection(pooled))
        return keras.layers.Concatenate(axis=-1)([deepest, conditioning])

    return fuse


def ssl_unet(input_tensor: Any, instruments: Iterable[str], params: dict | None = None) -> dict:
    """One sigmoid-mask U-Net per instrument, conditioned on the features of a
    self-supervised encoder computed from the same mixture magnitude (``unet.ssl_unet``)."""
    return build_ssl_unet(input_tensor, list(instruments), params or {})
