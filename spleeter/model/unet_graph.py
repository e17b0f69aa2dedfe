"""Upstream's U-Net as an inference graph, written straight from its checkpoint's weights.

The same network as :mod:`spleeter.model.functions.unet` (layer for layer, checkpoint names
included), described once against a :class:`GraphWriter`: the ONNX writer
(:mod:`spleeter.engines.onnx_graph`) makes the exported ``model.onnx``, the OpenVINO writer
(:mod:`spleeter.engines.openvino_graph`) the network OpenVINO compiles without any file in
between. No TensorFlow is imported, and the graph is channels-first end to end (one transpose
in, one out per stem) instead of transposes around every convolution.

Mapping of upstream's layers (TensorFlow, channels last) to the writers' (channels first):
- ``Conv2D(5x5, stride 2, "same")``: a convolution with pads (1, 1) before and (2, 2) after
  (TensorFlow puts the odd padding at the end); kernels ``(kh, kw, in, out)`` ->
  ``(out, in, kh, kw)``.
- ``Conv2DTranspose(5x5, stride 2, "same")``: a transposed convolution with the same pads (the
  output is cropped by 1 at the start and 2 at the end); kernels ``(kh, kw, out, in)`` ->
  ``(in, out, kh, kw)``.
- ``BatchNormalization`` (inference): ``x * scale + shift`` per channel, with ``scale = gamma /
  sqrt(variance + 1e-3)`` and ``shift = beta - mean * scale``.
- The final ``Conv2D(4x4, dilation 2, "same")``: pads (3, 3) on both sides; then a sigmoid mask
  (``unet.unet``) or a softmax across instruments (``unet.softmax_unet``) times the input.
- Dropout is the identity at inference.
"""

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from .functions import LayerNames
from .registry import model_params

BATCH_NORM_EPSILON = 1e-3
LEAKY_SLOPE = 0.2
_DEFAULT_FILTERS = (16, 32, 64, 128, 256, 512)
_SAME_STRIDE_2 = (1, 1, 2, 2)
"""``(top, left, bottom, right)`` pads of a 5x5 stride-2 ``"same"`` layer."""

WeightReader = Callable[[str, tuple[int, ...]], np.ndarray]
"""``weights(checkpoint name, expected shape) -> array``: raises when the tensor is missing or
has another shape (the caller knows the checkpoint and words the error)."""


class GraphWriter(Protocol):
    """What the U-Net needs of a graph format. Values are the writer's own handles (ONNX
    value names, OpenVINO outputs); arrays are float32, channels-first, in ONNX's layouts."""

    def input(self, name: str, bins: int, channels: int) -> Any:
        """The network's input ``(batch, frames, bins, channels)``, as channels-first."""

    def output(self, name: str, value: Any) -> None:
        """A channels-first value, back in the input's layout, as the output ``name``."""

    def conv(
        self,
        x: Any,
        kernel: np.ndarray,
        bias: np.ndarray,
        strides: tuple[int, int],
        pads: tuple[int, int, int, int],
        dilations: tuple[int, int],
    ) -> Any:
        """Convolution, kernel ``(out, in, kh, kw)``, pads ``(top, left, bottom, right)``."""

    def deconv(self, x: Any, kernel: np.ndarray, bias: np.ndarray) -> Any:
        """Transposed 5x5 stride-2 convolution with pads (1, 1, 2, 2), kernel
        ``(in, out, kh, kw)``: the output has twice the input's height and width."""

    def scale_shift(self, x: Any, scale: np.ndarray, shift: np.ndarray) -> Any:
        """``x * scale + shift`` per channel."""

    def activation(self, kind: str, x: Any) -> Any:
        """``ReLU``, ``ELU`` (alpha 1) or ``LeakyReLU`` (slope :data:`LEAKY_SLOPE`)."""

    def concat(self, values: list[Any]) -> Any:
        """Concatenation along the channel axis."""

    def sigmoid(self, x: Any) -> Any: ...

    def softmax_across(self, values: list[Any]) -> list[Any]:
        """Equally shaped values normalised by a softmax across them, element by element."""

    def multiply(self, a: Any, b: Any) -> Any: ...


def _activation_kind(name: str, default: str) -> str:
    """Upstream's activation rule: ``ReLU``/``ELU``/``LeakyReLU`` by name, else ``default``."""
    return name if name in ("ReLU", "ELU", "LeakyReLU") else default


class _Layers:
    """Reads a layer's checkpoint tensors and hands them to the writer in its layouts."""

    def __init__(self, writer: GraphWriter, weights: WeightReader) -> None:
        self.writer = writer
        self.weights = weights

    def weight(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        return np.asarray(self.weights(name, shape), dtype=np.float32)

    def conv(self, x: Any, layer: str, shape: tuple[int, int, int, int], **attributes) -> Any:
        kernel = self.weight(f"{layer}/kernel", shape).transpose(3, 2, 0, 1)
        bias = self.weight(f"{layer}/bias", shape[-1:])
        return self.writer.conv(x, np.ascontiguousarray(kernel), bias, **attributes)

    def deconv(self, x: Any, layer: str, shape: tuple[int, int, int, int]) -> Any:
        kernel = self.weight(f"{layer}/kernel", shape).transpose(3, 2, 0, 1)
        bias = self.weight(f"{layer}/bias", shape[2:3])
        return self.writer.deconv(x, np.ascontiguousarray(kernel), bias)

    def batch_norm(self, x: Any, layer: str, channels: int) -> Any:
        def weight(name: str) -> np.ndarray:
            return self.weight(f"{layer}/{name}", (channels,))

        scale = weight("gamma") / np.sqrt(
            weight("moving_variance") + np.float32(BATCH_NORM_EPSILON)
        )
        shift = weight("beta") - weight("moving_mean") * scale
        return self.writer.scale_shift(x, scale, shift)


def _unet_logits(layers: _Layers, x: Any, params: dict[str, Any], names: LayerNames) -> Any:
    """One instrument's U-Net on the channels-first input ``x``: its mask logits."""
    writer = layers.writer
    model = model_params(params)
    filters = list(model.get("conv_n_filters", _DEFAULT_FILTERS))
    conv_activation = _activation_kind(str(model.get("conv_activation")), "LeakyReLU")
    deconv_activation = _activation_kind(str(model.get("deconv_activation")), "ReLU")
    skips: list[tuple[Any, int]] = []
    level_input, channels = x, int(params["n_channels"])
    for level, n_filters in enumerate(filters):
        convolved = layers.conv(
            level_input,
            names("conv2d"),
            (5, 5, channels, n_filters),
            strides=(2, 2),
            pads=_SAME_STRIDE_2,
            dilations=(1, 1),
        )
        batch_norm = names("batch_normalization")
        channels = n_filters
        if level < len(filters) - 1:  # the deepest batch norm is dead in upstream's graph
            skips.append((convolved, n_filters))
            normalised = layers.batch_norm(convolved, batch_norm, n_filters)
            level_input = writer.activation(conv_activation, normalised)
    decoded = convolved
    for n_filters in [*reversed(filters[:-1]), 1]:
        decoded = layers.deconv(decoded, names("conv2d_transpose"), (5, 5, n_filters, channels))
        decoded = writer.activation(deconv_activation, decoded)
        decoded = layers.batch_norm(decoded, names("batch_normalization"), n_filters)
        channels = n_filters
        if skips:
            skip, skip_channels = skips.pop()
            decoded = writer.concat([skip, decoded])
            channels += skip_channels
    mask_channels = 2
    return layers.conv(
        decoded,
        names("conv2d"),
        (4, 4, channels, mask_channels),
        strides=(1, 1),
        pads=(3, 3, 3, 3),
        dilations=(2, 2),
    )


def _write(writer: GraphWriter, params: dict[str, Any], weights: WeightReader, softmax: bool):
    layers = _Layers(writer, weights)
    channels_first = writer.input(
        f"{params['mix_name']}_spectrogram", int(params["F"]), int(params["n_channels"])
    )
    names = LayerNames()
    instruments = list(params["instrument_list"])
    logits = [_unet_logits(layers, channels_first, params, names) for _ in instruments]
    if softmax:
        masks = writer.softmax_across(logits)
    else:
        masks = [writer.sigmoid(value) for value in logits]
    for instrument, mask in zip(instruments, masks, strict=True):
        writer.output(f"{instrument}_spectrogram", writer.multiply(mask, channels_first))


def unet(writer: GraphWriter, params: dict[str, Any], weights: WeightReader) -> None:
    """Write ``unet.unet`` with the checkpoint tensors ``weights`` gives."""
    _write(writer, params, weights, softmax=False)


def softmax_unet(writer: GraphWriter, params: dict[str, Any], weights: WeightReader) -> None:
    """Write ``unet.softmax_unet`` with ``weights``."""
    _write(writer, params, weights, softmax=True)
