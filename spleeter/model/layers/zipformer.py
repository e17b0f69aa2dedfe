"""Layers of the Zipformer-style band-split transformer (``transformer.zipformer``).

Features are laid out ``(batch, frames, bands, dim)`` throughout. Everything is Keras 3 ops
that tf2onnx converts (element-wise, reshape, transpose, matmul, einsum, softmax, depth-wise
convolution); batch and frames stay dynamic.

- ``BiasNorm`` (Zipformer): ``y = x * exp(g) / sqrt(mean_c((x - b)^2))``, ``b`` per channel,
  ``g`` a scalar.
- ``swoosh_r`` / ``swoosh_l`` (Zipformer's activations).
- ``BandSplit``: per band, RMS norm then a linear map of its ``width x channels`` values to
  ``dim`` (bands of equal width in one einsum).
- ``AxialAttention``: self-attention over frames (per band) or over bands (per frame), rotary
  position encoding on queries and keys, so any length works.
- ``Downsample`` / ``Upsample`` / ``Bypass``: Zipformer's learned down-sampling (softmax-weighted
  sum of ``factor`` frames), repeat up-sampling, per-channel bypass.
- ``ClassTokens``: one learnable token per stem attending over every band x frame feature,
  giving each stem's FiLM scale and shift.
- ``BandMaskHead``: per band, an MLP from ``dim`` to the band's ``width x channels`` sigmoid mask.
"""

from typing import Any

import keras
import numpy as np

ops = keras.ops


def swoosh_r(x: Any) -> Any:
    """``log(1 + exp(x - 1)) - 0.08 x - 0.313261687`` (Zipformer's convolution modules)."""
    return ops.softplus(x - 1.0) - 0.08 * x - 0.313261687


def swoosh_l(x: Any) -> Any:
    """``log(1 + exp(x - 4)) - 0.08 x - 0.035`` (Zipformer's feed-forward modules)."""
    return ops.softplus(x - 4.0) - 0.08 * x - 0.035


def _groups(edges: list[int]) -> list[tuple[int, int, int]]:
    """Runs of consecutive bands of equal width: ``(first bin, n bands, width)``."""
    groups: list[tuple[int, int, int]] = []
    for start, stop in zip(edges, edges[1:], strict=False):
        width = stop - start
        if groups and groups[-1][2] == width:
            first, count, _ = groups[-1]
            groups[-1] = (first, count + 1, width)
        else:
            groups.append((start, 1, width))
    return groups


@keras.saving.register_keras_serializable("spleeter")
class BiasNorm(keras.layers.Layer):
    def __init__(self, epsilon: float = 1e-6, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def build(self, shape: Any) -> None:
        self.bias = self.add_weight(name="bias", shape=(shape[-1],), initializer="zeros")
        self.log_scale = self.add_weight(name="log_scale", shape=(), initializer="zeros")

    def call(self, x: Any) -> Any:
        power = ops.mean(ops.square(x - self.bias), axis=-1, keepdims=True)
        return x * ops.exp(self.log_scale) * ops.rsqrt(power + self.epsilon)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable("spleeter")
class BandSplit(keras.layers.Layer):
    """``(batch, frames, F, channels)`` -> ``(batch, frames, bands, dim)``."""

    def __init__(self, edges: list[int], dim: int, epsilon: float = 1e-6, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.edges, self.dim, self.epsilon = list(edges), int(dim), epsilon

    def build(self, shape: Any) -> None:
        channels = int(shape[-1])
        self.channels = channels
        self.gains, self.kernels, self.biases = [], [], []
        for index, (_, count, width) in enumerate(_groups(self.edges)):
            size = width * channels
            self.gains.append(
                self.add_weight(name=f"gain_{index}", shape=(count, size), initializer="ones")
            )
            self.kernels.append(
                self.add_weight(
                    name=f"kernel_{index}",
                    shape=(count, size, self.dim),
                    initializer=keras.initializers.RandomNormal(stddev=size**-0.5),
                )
            )
            self.biases.append(
                self.add_weight(name=f"bias_{index}", shape=(count, self.dim), initializer="zeros")
            )

    def call(self, x: Any) -> Any:
        batch, frames = ops.shape(x)[0], ops.shape(x)[1]
        parts = []
        for index, (start, count, width) in enumerate(_groups(self.edges)):
            band = x[:, :, start : start + count * width, :]
            band = ops.reshape(band, (batch, frames, count, width * self.channels))
            rms = ops.sqrt(ops.mean(ops.square(band), axis=-1, keepdims=True) + self.epsilon)
            band = band / rms * self.gains[index]
            parts.append(
                ops.einsum("btnk,nkd->btnd", band, self.kernels[index]) + self.biases[index]
            )
        return parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=2)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "edges": self.edges, "dim": self.dim}


@keras.saving.register_keras_serializable("spleeter")
class BandMaskHead(keras.layers.Layer):
    """``(batch, frames, bands, dim)`` -> a sigmoid mask ``(batch, frames, F, channels)``."""

    def __init__(self, edges: list[int], channels: int, hidden: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.edges, self.channels, self.hidden = list(edges), int(channels), int(hidden)

    def build(self, shape: Any) -> None:
        dim = int(shape[-1])
        self.weights_ = []
        for index, (_, count, width) in enumerate(_groups(self.edges)):
            size = width * self.channels
            self.weights_.append(
                (
                    self.add_weight(
                        name=f"hidden_kernel_{index}",
                        shape=(count, dim, self.hidden),
                        initializer=keras.initializers.RandomNormal(stddev=dim**-0.5),
                    ),
                    self.add_weight(
                        name=f"hidden_bias_{index}", shape=(count, self.hidden), initializer="zeros"
                    ),
                    self.add_weight(
                        name=f"out_kernel_{index}",
                        shape=(count, self.hidden, size),
                        initializer=keras.initializers.RandomNormal(stddev=self.hidden**-0.5),
                    ),
                    self.add_weight(
                        name=f"out_bias_{index}", shape=(count, size), initializer="zeros"
                    ),
                )
            )

    def call(self, x: Any) -> Any:
        batch, frames = ops.shape(x)[0], ops.shape(x)[1]
        parts, band = [], 0
        for (_, count, width), (w1, b1, w2, b2) in zip(
            _groups(self.edges), self.weights_, strict=True
        ):
            features = x[:, :, band : band + count, :]
            band += count
            hidden = ops.tanh(ops.einsum("btnd,ndh->btnh", features, w1) + b1)
            mask = ops.sigmoid(ops.einsum("btnh,nhk->btnk", hidden, w2) + b2)
            parts.append(ops.reshape(mask, (batch, frames, count * width, self.channels)))
        return parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=2)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "edges": self.edges,
            "channels": self.channels,
            "hidden": self.hidden,
        }


def _rotate(x: Any, positions: Any, half: int) -> Any:
    """Rotary position encoding of ``x`` ``(n, length, heads, 2 * half)``."""
    inverse = ops.convert_to_tensor(
        (10000.0 ** (-np.arange(half, dtype=np.float32) / half)).astype(np.float32)
    )
    angles = ops.cast(positions, "float32")[:, None] * inverse[None, :]
    cos = ops.cast(ops.cos(angles), x.dtype)[None, :, None, :]
    sin = ops.cast(ops.sin(angles), x.dtype)[None, :, None, :]
    first, second = x[..., :half], x[..., half:]
    return ops.concatenate([first * cos - second * sin, first * sin + second * cos], axis=-1)


@keras.saving.register_keras_serializable("spleeter")
class AxialAttention(keras.layers.Layer):
    """Pre-norm self-attention over ``axis`` 1 (frames) or 2 (bands), added to the input."""

    def __init__(self, heads: int, axis: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.heads, self.axis = int(heads), int(axis)

    def build(self, shape: Any) -> None:
        dim = int(shape[-1])
        self.dim = dim
        self.norm = BiasNorm(name="norm")
        self.qkv = keras.layers.Dense(3 * dim, name="qkv")
        self.out = keras.layers.Dense(dim, name="out", kernel_initializer="zeros")
        self.norm.build(shape)
        self.qkv.build(shape)
        self.out.build(shape[:-1] + (dim,))

    def call(self, x: Any) -> Any:
        shape = ops.shape(x)
        batch, frames, bands = shape[0], shape[1], shape[2]
        y = self.norm(x)
        if self.axis == 1:
            y = ops.transpose(y, (0, 2, 1, 3))
            length = frames
        else:
            length = bands
        heads, head_dim = self.heads, self.dim // self.heads
        qkv = ops.reshape(self.qkv(y), (-1, length, 3, heads, head_dim))
        positions = ops.arange(length)
        q = _rotate(qkv[:, :, 0], positions, head_dim // 2)
        k = _rotate(qkv[:, :, 1], positions, head_dim // 2)
        v = qkv[:, :, 2]
        q, k, v = (ops.transpose(t, (0, 2, 1, 3)) for t in (q, k, v))
        scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) * (head_dim**-0.5)
        attended = ops.matmul(ops.softmax(scores, axis=-1), v)
        attended = ops.reshape(ops.transpose(attended, (0, 2, 1, 3)), (-1, length, self.dim))
        if self.axis == 1:
            attended = ops.reshape(attended, (batch, bands, frames, self.dim))
            attended = ops.transpose(attended, (0, 2, 1, 3))
        else:
            attended = ops.reshape(attended, (batch, frames, bands, self.dim))
        return x + self.out(attended)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "heads": self.heads, "axis": self.axis}


@keras.saving.register_keras_serializable("spleeter")
class FeedForward(keras.layers.Layer):
    """Pre-norm ``dim -> ratio x dim -> dim`` with SwooshL, added to the input."""

    def __init__(self, ratio: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ratio = int(ratio)

    def build(self, shape: Any) -> None:
        dim = int(shape[-1])
        self.norm = BiasNorm(name="norm")
        self.inner = keras.layers.Dense(self.ratio * dim, name="inner")
        self.out = keras.layers.Dense(dim, name="out", kernel_initializer="zeros")
        self.norm.build(shape)
        self.inner.build(shape)
        self.out.build(shape[:-1] + (self.ratio * dim,))

    def call(self, x: Any) -> Any:
        return x + self.out(swoosh_l(self.inner(self.norm(x))))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "ratio": self.ratio}


@keras.saving.register_keras_serializable("spleeter")
class TimeConvolution(keras.layers.Layer):
    """Pre-norm gated point-wise -> depth-wise convolution over frames -> SwooshR -> point-wise,
    added to the input (Zipformer's convolution module, without its batch statistics)."""

    def __init__(self, kernel: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kernel = int(kernel)

    def build(self, shape: Any) -> None:
        dim = int(shape[-1])
        self.dim = dim
        self.norm = BiasNorm(name="norm")
        self.gate = keras.layers.Dense(2 * dim, name="gate")
        self.depthwise = keras.layers.DepthwiseConv2D(
            (self.kernel, 1), padding="same", name="depthwise"
        )
        self.out = keras.layers.Dense(dim, name="out", kernel_initializer="zeros")
        self.norm.build(shape)
        self.gate.build(shape)
        self.depthwise.build(shape)
        self.out.build(shape)

    def call(self, x: Any) -> Any:
        gated = self.gate(self.norm(x))
        y = gated[..., : self.dim] * ops.sigmoid(gated[..., self.dim :])
        return x + self.out(swoosh_r(self.depthwise(y)))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "kernel": self.kernel}


@keras.saving.register_keras_serializable("spleeter")
class Downsample(keras.layers.Layer):
    """Softmax-weighted sum of each ``factor`` consecutive frames (weights start equal)."""

    def __init__(self, factor: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.factor = int(factor)

    def build(self, shape: Any) -> None:
        self.logits = self.add_weight(name="logits", shape=(self.factor,), initializer="zeros")

    def call(self, x: Any) -> Any:
        shape = ops.shape(x)
        grouped = ops.reshape(x, (shape[0], -1, self.factor, shape[2], shape[3]))
        weights = ops.cast(ops.softmax(self.logits), x.dtype)[None, None, :, None, None]
        return ops.sum(grouped * weights, axis=2)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "factor": self.factor}


def upsample(x: Any, factor: int) -> Any:
    """Repeat each frame ``factor`` times."""
    shape = ops.shape(x)
    repeated = ops.tile(ops.expand_dims(x, 2), (1, 1, factor, 1, 1))
    return ops.reshape(repeated, (shape[0], -1, shape[2], shape[3]))


@keras.saving.register_keras_serializable("spleeter")
class Bypass(keras.layers.Layer):
    """``x_in + (x - x_in) * c``, ``c`` per channel clamped to ``[minimum, 1]``."""

    def __init__(self, minimum: float = 0.1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.minimum = float(minimum)

    def build(self, shapes: Any) -> None:
        self.scale = self.add_weight(
            name="scale", shape=(shapes[0][-1],), initializer=keras.initializers.Constant(0.5)
        )

    def call(self, inputs: Any) -> Any:
        x_in, x = inputs
        return x_in + (x - x_in) * ops.clip(self.scale, self.minimum, 1.0)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "minimum": self.minimum}


@keras.saving.register_keras_serializable("spleeter")
class ClassTokens(keras.layers.Layer):
    """One learnable token per stem; each attends over every band x frame feature,
    ``g_i = c_i + sum_p softmax_p(q(c_i) . k(f_p) / sqrt(d)) v(f_p)``, and gives its stem's
    FiLM ``(scale, shift)``, each ``(batch, stems, dim)`` (zero at the start: identity), and
    the grouped tokens ``g`` themselves (``(batch, stems, dim)``, read by the presence head)."""

    def __init__(self, stems: int, heads: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stems, self.heads = int(stems), int(heads)

    def build(self, shape: Any) -> None:
        dim = int(shape[-1])
        self.dim = dim
        self.tokens = self.add_weight(
            name="tokens",
            shape=(self.stems, dim),
            initializer=keras.initializers.RandomNormal(stddev=1.0),
        )
        self.query = keras.layers.Dense(dim, name="query")
        self.key_value = keras.layers.Dense(2 * dim, name="key_value")
        self.out = keras.layers.Dense(dim, name="out")
        self.film = keras.layers.Dense(2 * dim, name="film", kernel_initializer="zeros")
        self.query.build((self.stems, dim))
        self.key_value.build((None, None, dim))
        self.out.build((None, self.stems, dim))
        self.film.build((None, self.stems, dim))

    def call(self, features: Any) -> tuple[Any, Any, Any]:
        batch = ops.shape(features)[0]
        heads, head_dim = self.heads, self.dim // self.heads
        tokens = ops.cast(self.tokens, features.dtype)
        q = ops.reshape(self.query(tokens), (1, self.stems, heads, head_dim))
        q = ops.transpose(q, (0, 2, 1, 3))
        kv = ops.reshape(self.key_value(features), (batch, -1, 2, heads, head_dim))
        k = ops.transpose(kv[:, :, 0], (0, 2, 3, 1))
        v = ops.transpose(kv[:, :, 1], (0, 2, 1, 3))
        weights = ops.softmax(ops.matmul(q, k) * (head_dim**-0.5), axis=-1)
        attended = ops.transpose(ops.matmul(weights, v), (0, 2, 1, 3))
        grouped = tokens[None] + self.out(ops.reshape(attended, (batch, self.stems, self.dim)))
        film = self.film(grouped)
        return film[..., : self.dim], film[..., self.dim :], grouped

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "stems": self.stems, "heads": self.heads}
