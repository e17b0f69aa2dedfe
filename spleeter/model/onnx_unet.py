"""Upstream's U-Net as an ONNX graph, built straight from its checkpoint's weights.

The same network as :mod:`spleeter.model.functions.unet` (layer for layer, checkpoint names
included), written with ``onnx.helper`` instead of traced from Keras by tf2onnx: no TensorFlow
is imported, it takes about a second instead of a minute and 6 GiB, and the graph is in ONNX's
native channels-first layout end to end (one transpose in, one out per stem) instead of
transposes around every convolution.

Mapping of upstream's layers (TensorFlow, channels last) to ONNX (channels first):
- ``Conv2D(5x5, stride 2, "same")``: ``Conv`` with pads (1, 1) before and (2, 2) after (TensorFlow
  puts the odd padding at the end); kernels ``(kh, kw, in, out)`` -> ``(out, in, kh, kw)``.
- ``Conv2DTranspose(5x5, stride 2, "same")``: ``ConvTranspose`` with the same pads (the output
  is cropped by 1 at the start and 2 at the end); kernels ``(kh, kw, out, in)`` ->
  ``(in, out, kh, kw)``.
- ``BatchNormalization`` (inference): ``x * scale + shift`` per channel, with ``scale = gamma /
  sqrt(variance + 1e-3)`` and ``shift = beta - mean * scale``.
- The final ``Conv2D(4x4, dilation 2, "same")``: pads (3, 3) on both sides; then a sigmoid mask
  (``unet.unet``) or a softmax across instruments (``unet.softmax_unet``) times the input.
- Dropout is the identity at inference.
"""

from collections.abc import Callable
from typing import Any

import numpy as np

from .functions import LayerNames
from .registry import model_params

BATCH_NORM_EPSILON = 1e-3
LEAKY_SLOPE = 0.2
_DEFAULT_FILTERS = (16, 32, 64, 128, 256, 512)

WeightReader = Callable[[str, tuple[int, ...]], np.ndarray]
"""``weights(checkpoint name, expected shape) -> array``: raises when the tensor is missing or
has another shape (the caller knows the checkpoint and words the error)."""


class _Graph:
    """Accumulates nodes, and initialisers with unique names written straight into
    ``target`` (a ``GraphProto``): building ``TensorProto``s apart and handing them to
    ``helper.make_graph`` / ``make_model`` copies the 150 MB of weights three more times."""

    def __init__(self, weights: "WeightReader", target: Any) -> None:
        self.weights = weights
        self.target = target
        self.nodes: list[Any] = []
        self._count = 0

    def name(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def constant(self, stem: str, value: np.ndarray) -> str:
        from onnx import helper

        name = self.name(stem)
        value = np.asarray(value)
        tensor = self.target.initializer.add()
        tensor.name = name
        tensor.data_type = helper.np_dtype_to_tensor_dtype(value.dtype)
        tensor.dims.extend(value.shape)
        tensor.raw_data = value.tobytes()  # C order, whatever the array's layout
        return name

    def node(self, op: str, inputs: list[str], output: str | None = None, **attributes) -> str:
        from onnx import helper

        output = output or self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [output], **attributes))
        return output

    def weight(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        return np.asarray(self.weights(name, shape), dtype=np.float32)

    def conv(self, x: str, layer: str, shape: tuple[int, int, int, int], **attributes) -> str:
        kernel = self.weight(f"{layer}/kernel", shape).transpose(3, 2, 0, 1)
        bias = self.weight(f"{layer}/bias", shape[-1:])
        return self.node(
            "Conv",
            [x, self.constant(f"{layer}/kernel", kernel), self.constant(f"{layer}/bias", bias)],
            kernel_shape=list(kernel.shape[2:]),
            **attributes,
        )

    def deconv(self, x: str, layer: str, shape: tuple[int, int, int, int]) -> str:
        kernel = self.weight(f"{layer}/kernel", shape).transpose(3, 2, 0, 1)
        bias = self.weight(f"{layer}/bias", shape[2:3])
        return self.node(
            "ConvTranspose",
            [x, self.constant(f"{layer}/kernel", kernel), self.constant(f"{layer}/bias", bias)],
            kernel_shape=list(kernel.shape[2:]),
            strides=[2, 2],
            pads=[1, 1, 2, 2],
        )

    def batch_norm(self, x: str, layer: str, channels: int) -> str:
        def weight(name: str) -> np.ndarray:
            return self.weight(f"{layer}/{name}", (channels,))

        scale = weight("gamma") / np.sqrt(
            weight("moving_variance") + np.float32(BATCH_NORM_EPSILON)
        )
        shift = weight("beta") - weight("moving_mean") * scale
        per_channel = (-1, 1, 1)
        scaled = self.node("Mul", [x, self.constant(f"{layer}/scale", scale.reshape(per_channel))])
        return self.node(
            "Add", [scaled, self.constant(f"{layer}/shift", shift.reshape(per_channel))]
        )


def _activation(name: str, default: str) -> Callable[[_Graph, str], str]:
    """Upstream's activation rule: ``ReLU``/``ELU``/``LeakyReLU`` by name, else ``default``."""
    chosen = name if name in ("ReLU", "ELU", "LeakyReLU") else default
    if chosen == "ReLU":
        return lambda graph, x: graph.node("Relu", [x])
    if chosen == "ELU":
        return lambda graph, x: graph.node("Elu", [x], alpha=1.0)
    return lambda graph, x: graph.node("LeakyRelu", [x], alpha=LEAKY_SLOPE)


def _unet_logits(graph: _Graph, x: str, params: dict[str, Any], names: LayerNames) -> str:
    """One instrument's U-Net on the channels-first input ``x``: its mask logits."""
    model = model_params(params)
    filters = list(model.get("conv_n_filters", _DEFAULT_FILTERS))
    conv_activation = _activation(str(model.get("conv_activation")), "LeakyReLU")
    deconv_activation = _activation(str(model.get("deconv_activation")), "ReLU")
    skips: list[tuple[str, int]] = []
    level_input, channels = x, int(params["n_channels"])
    for level, n_filters in enumerate(filters):
        convolved = graph.conv(
            level_input,
            names("conv2d"),
            (5, 5, channels, n_filters),
            strides=[2, 2],
            pads=[1, 1, 2, 2],
        )
        batch_norm = names("batch_normalization")
        channels = n_filters
        if level < len(filters) - 1:  # the deepest batch norm is dead in upstream's graph
            skips.append((convolved, n_filters))
            normalised = graph.batch_norm(convolved, batch_norm, n_filters)
            level_input = conv_activation(graph, normalised)
    decoded = convolved
    for n_filters in [*reversed(filters[:-1]), 1]:
        decoded = graph.deconv(decoded, names("conv2d_transpose"), (5, 5, n_filters, channels))
        decoded = deconv_activation(graph, decoded)
        decoded = graph.batch_norm(decoded, names("batch_normalization"), n_filters)
        channels = n_filters
        if skips:
            skip, skip_channels = skips.pop()
            decoded = graph.node("Concat", [skip, decoded], axis=1)
            channels += skip_channels
    mask_channels = 2
    return graph.conv(
        decoded,
        names("conv2d"),
        (4, 4, channels, mask_channels),
        dilations=[2, 2],
        pads=[3, 3, 3, 3],
    )


def _graph(params: dict[str, Any], weights: "WeightReader", softmax: bool, opset: int) -> Any:
    from onnx import TensorProto, helper

    model = helper.make_model(
        helper.make_graph([], "spleeter_unet", [], []),
        opset_imports=[helper.make_opsetid("", opset)],
    )
    graph = _Graph(weights, model.graph)
    instruments = list(params["instrument_list"])
    input_name = f"{params['mix_name']}_spectrogram"
    channels_first = graph.node("Transpose", [input_name], perm=[0, 3, 1, 2])
    names = LayerNames()
    logits = [_unet_logits(graph, channels_first, params, names) for _ in instruments]
    if softmax:
        stacked = graph.node(
            "Concat",
            [
                graph.node("Unsqueeze", [value, graph.constant("axis", np.array([4]))])
                for value in logits
            ],
            axis=4,
        )
        normalised = graph.node("Softmax", [stacked], axis=4)
        masks = [
            graph.node("Gather", [normalised, graph.constant("index", np.array(index))], axis=4)
            for index in range(len(instruments))
        ]
    else:
        masks = [graph.node("Sigmoid", [value]) for value in logits]
    outputs = []
    for instrument, mask in zip(instruments, masks, strict=True):
        estimate = graph.node("Mul", [mask, channels_first])
        name = f"{instrument}_spectrogram"
        graph.node("Transpose", [estimate], output=name, perm=[0, 2, 3, 1])
        outputs.append(name)
    shape = ["batch", "frames", int(params["F"]), int(params["n_channels"])]
    model.graph.node.extend(graph.nodes)
    model.graph.input.append(helper.make_tensor_value_info(input_name, TensorProto.FLOAT, shape))
    model.graph.output.extend(
        helper.make_tensor_value_info(name, TensorProto.FLOAT, shape) for name in outputs
    )
    return model


def unet_graph(params: dict[str, Any], weights: "WeightReader", opset: int) -> Any:
    """The ONNX model of ``unet.unet`` with the checkpoint tensors ``weights`` gives."""
    return _graph(params, weights, softmax=False, opset=opset)


def softmax_unet_graph(params: dict[str, Any], weights: "WeightReader", opset: int) -> Any:
    """The ONNX model of ``unet.softmax_unet`` with ``weights``."""
    return _graph(params, weights, softmax=True, opset=opset)
