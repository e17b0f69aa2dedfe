"""Keras layers of the SSL encoder: log-mel front end, convolutions, transformer.

The encoder (:class:`EncoderNetwork`, one layer named ``ssl_encoder`` so that every variable is
stored as ``ssl_encoder/...``) follows HuBERT's "stable layer norm" transformer (HuBERT-Large,
WavLM-Large without the relative position bias) on a different front end:

    log-mel (batch, T, n_mels)
      -> conv_layers x [Conv1D(conv_channels, conv_kernel, stride 1, same) -> GELU]
      -> feature_layer_norm -> feature_projection (dim)          hidden state 0 (after the
      -> masked frames replaced by mask_embedding (pretraining)   mask and the position conv)
      -> + GELU(grouped position convolution) -> dropout
      -> layers x pre-norm transformer layer                      hidden states 1 .. layers
      -> final layer_norm (applied to the last hidden state)

Every operation keeps the frame rate: one output frame per STFT frame. GELU is the exact one
written with ``erf`` and the grouped convolution is written as per-group convolutions, because
tf2onnx converts neither Keras' ``erfc`` GELU nor TensorFlow's grouped convolution.
"""

import math
from typing import Any

import keras
import numpy as np

from ...audio.features import LOG_FLOOR
from ..encoder_config import EncoderConfig

ENCODER_NAME = "ssl_encoder"
"""Name of the encoder layer: the prefix of its variables in every checkpoint."""


def gelu(x: Any) -> Any:
    """Exact GELU, ``x * Phi(x)``, with ``erf`` (ONNX ``Erf``)."""
    return 0.5 * x * (1.0 + keras.ops.erf(x * (1.0 / math.sqrt(2.0))))


class LogMel(keras.layers.Layer):
    """Mixture magnitude ``(batch, T, F, C)`` -> log-mel ``(batch, T, n_mels)``, in float32.

    ``log(mean_c |X|^2 @ matrix + LOG_FLOOR)``: the in-graph twin of
    :func:`spleeter.audio.features.log_mel`. No weights (the matrix is a constant).
    """

    def __init__(self, matrix: np.ndarray, **kwargs: Any) -> None:
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        self.matrix = np.ascontiguousarray(matrix, dtype=np.float32)

    def call(self, magnitude: Any) -> Any:
        magnitude = keras.ops.cast(magnitude, "float32")
        power = keras.ops.mean(magnitude * magnitude, axis=-1)
        return keras.ops.log(keras.ops.matmul(power, self.matrix) + LOG_FLOOR)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (*input_shape[:-2], self.matrix.shape[1])


class GroupedConv1D(keras.layers.Layer):
    """A grouped 1-D convolution over time, "same" length, PyTorch's padding for even kernels.

    The kernel ``(kernel_size, in / groups, filters)`` is Keras' grouped layout. Output frame
    ``t`` sees input frames ``t - kernel_size // 2 ... t + (kernel_size - 1) // 2`` (as
    HuBERT's ``Conv1d(padding=k // 2)`` followed by dropping the last frame).
    """

    def __init__(self, filters: int, kernel_size: int, groups: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size
        self.groups = groups

    def build(self, input_shape: tuple) -> None:
        channels = int(input_shape[-1])
        self.kernel = self.add_weight(
            shape=(self.kernel_size, channels // self.groups, self.filters),
            initializer=keras.initializers.HeNormal(),
            name="kernel",
        )
        self.bias = self.add_weight(shape=(self.filters,), initializer="zeros", name="bias")

    def call(self, x: Any) -> Any:
        left = self.kernel_size // 2
        right = self.kernel_size - 1 - left
        x = keras.ops.pad(x, [[0, 0], [left, right], [0, 0]])
        inputs = keras.ops.split(x, self.groups, axis=-1)
        kernels = keras.ops.split(keras.ops.cast(self.kernel, x.dtype), self.groups, axis=-1)
        outputs = [
            keras.ops.conv(part, kernel, padding="valid")
            for part, kernel in zip(inputs, kernels, strict=True)
        ]
        return keras.ops.concatenate(outputs, axis=-1) + keras.ops.cast(self.bias, x.dtype)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (*input_shape[:-1], self.filters)


class SelfAttention(keras.layers.Layer):
    """Multi-head self-attention with ``q_proj``, ``k_proj``, ``v_proj``, ``out_proj``
    (queries scaled by ``head_dim ** -0.5`` after their projection, softmax in float32)."""

    def __init__(self, dim: int, heads: int, dropout: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.q_proj = keras.layers.Dense(dim, name="q_proj")
        self.k_proj = keras.layers.Dense(dim, name="k_proj")
        self.v_proj = keras.layers.Dense(dim, name="v_proj")
        self.out_proj = keras.layers.Dense(dim, name="out_proj")
        self.dropout = keras.layers.Dropout(dropout)

    def _split_heads(self, x: Any) -> Any:
        return keras.ops.stack(keras.ops.split(x, self.heads, axis=-1), axis=1)

    def call(self, x: Any, training: bool | None = None) -> Any:
        queries = self._split_heads(self.q_proj(x) * self.scale)
        keys = self._split_heads(self.k_proj(x))
        values = self._split_heads(self.v_proj(x))
        scores = keras.ops.matmul(queries, keras.ops.transpose(keys, (0, 1, 3, 2)))
        weights = keras.ops.softmax(keras.ops.cast(scores, "float32"), axis=-1)
        weights = self.dropout(keras.ops.cast(weights, values.dtype), training=training)
        context = keras.ops.matmul(weights, values)
        merged = keras.ops.concatenate([context[:, h] for h in range(self.heads)], axis=-1)
        return self.out_proj(merged)


class TransformerLayer(keras.layers.Layer):
    """A pre-norm transformer layer (HuBERT's ``EncoderLayerStableLayerNorm``)."""

    def __init__(self, config: EncoderConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        epsilon = config.layer_norm_epsilon
        self.layer_norm = keras.layers.LayerNormalization(epsilon=epsilon, name="layer_norm")
        self.attention = SelfAttention(config.dim, config.heads, config.dropout, name="attention")
        self.final_layer_norm = keras.layers.LayerNormalization(
            epsilon=epsilon, name="final_layer_norm"
        )
        self.intermediate_dense = keras.layers.Dense(config.ff_dim, name="intermediate_dense")
        self.output_dense = keras.layers.Dense(config.dim, name="output_dense")
        self.dropout = keras.layers.Dropout(config.dropout)

    def call(self, x: Any, training: bool | None = None) -> Any:
        attended = self.attention(self.layer_norm(x), training=training)
        x = x + self.dropout(attended, training=training)
        hidden = gelu(self.intermediate_dense(self.final_layer_norm(x)))
        hidden = self.output_dense(self.dropout(hidden, training=training))
        return x + self.dropout(hidden, training=training)


class EncoderNetwork(keras.layers.Layer):
    """The SSL encoder: log-mel frames in, hidden states out (see the module docstring).

    ``call(log_mel, span_mask=None, depth=None)`` returns the list of hidden states ``0 ..
    depth`` (default: all ``layers``), each ``(batch, T, dim)``; the last one is layer-normed
    when it is the last layer. ``span_mask`` ``(batch, T)`` bool replaces the masked frames by
    the learned mask embedding (pretraining). A frozen encoder (``trainable`` false) always runs
    in inference mode.

    ``pretrained_dir`` names an encoder directory (``spleeter pretrain``'s output) whose weights
    :meth:`load_pretrained` loads; ``input_bins`` is the number of STFT bins of the magnitude
    it reads (checked against the pretrained encoder's).
    """

    def __init__(
        self,
        config: EncoderConfig,
        pretrained_dir: str | None = None,
        input_bins: int | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("name", ENCODER_NAME)
        super().__init__(**kwargs)
        self.config = config
        self.pretrained_dir = pretrained_dir
        self.input_bins = input_bins
        self.convs = [
            keras.layers.Conv1D(
                config.conv_channels, config.conv_kernel, padding="same", name=f"conv_{index}"
            )
            for index in range(config.conv_layers)
        ]
        epsilon = config.layer_norm_epsilon
        self.feature_layer_norm = keras.layers.LayerNormalization(
            epsilon=epsilon, name="feature_layer_norm"
        )
        self.feature_projection = keras.layers.Dense(config.dim, name="feature_projection")
        self.pos_conv = GroupedConv1D(
            config.dim, config.pos_conv_kernel, config.pos_conv_groups, name="pos_conv"
        )
        self.blocks = [
            TransformerLayer(config, name=f"layer_{index}") for index in range(config.layers)
        ]
        self.layer_norm = keras.layers.LayerNormalization(epsilon=epsilon, name="layer_norm")
        self.dropout = keras.layers.Dropout(config.dropout)

    def build(self, input_shape: tuple) -> None:
        self.mask_embedding = self.add_weight(
            shape=(self.config.dim,),
            initializer=keras.initializers.RandomUniform(0.0, 1.0),
            name="mask_embedding",
        )

    def call(
        self,
        log_mel: Any,
        span_mask: Any = None,
        training: bool | None = None,
        depth: int | None = None,
    ) -> list[Any]:
        depth = self.config.layers if depth is None else int(depth)
        if not self.trainable:
            training = False  # a frozen encoder runs in inference mode (no dropout), as Keras'
            # frozen BatchNormalization does: a functional model passes its own training flag
        x = log_mel
        for conv in self.convs:
            x = gelu(conv(x))
        x = self.feature_projection(self.feature_layer_norm(x))
        if span_mask is not None:
            embedding = keras.ops.cast(self.mask_embedding, x.dtype)
            x = keras.ops.where(keras.ops.expand_dims(span_mask, -1), embedding, x)
        x = x + gelu(self.pos_conv(x))
        x = self.dropout(x, training=training)
        hidden = [x]
        for block in self.blocks[:depth]:
            x = block(x, training=training)
            hidden.append(x)
        if depth == self.config.layers:
            hidden[-1] = self.layer_norm(x)
        return hidden

    def load_pretrained(self) -> str | None:
        """Load the weights of ``pretrained_dir`` (nothing without one); return a description
        of what was loaded. Called on a fresh ``spleeter train`` run (see
        :func:`spleeter.model.initialize_pretrained`)."""
        if not self.pretrained_dir:
            return None
        from ..encoder_folder import load_encoder_weights

        checkpoint = load_encoder_weights(self, self.pretrained_dir, self.input_bins)
        frozen = "" if self.trainable else " (frozen)"
        return f"{self.name} from {checkpoint}{frozen}"
