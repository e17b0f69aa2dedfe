"""An OpenVINO graph writer: the registry's graph-described networks (the U-Nets,
:mod:`spleeter.model.unet_graph`) built as an ``openvino.Model`` straight from the checkpoint.

No ONNX file is written or parsed on the way (``import onnx`` alone costs 0.1 to 0.7 s), and
the sigmoid stays OpenVINO's own: it is accurate (2.8e-7 relative, measured over -40..40) and
fuses into the convolution before it, where the exported ONNX graph spells it out as four
nodes for ONNX Runtime's sake (:func:`spleeter.engines.onnx_export._precise_sigmoids`).
"""

from collections.abc import Callable
from typing import Any

import numpy as np

from ..model.unet_graph import LEAKY_SLOPE, WeightReader


def _opset(openvino: Any) -> Any:
    from importlib import import_module

    for name in ("openvino.opset13", "openvino.runtime.opset13"):  # 2024.0 had only the latter
        try:
            return import_module(name)
        except ImportError:
            continue
    raise ImportError(f"OpenVINO {openvino.__version__} has no opset13")


class OpenVinoWriter:
    """Builds the network with OpenVINO's opset 13 operations."""

    def __init__(self, openvino: Any) -> None:
        self.openvino = openvino
        self.ops = _opset(openvino)
        self.parameters: list[Any] = []
        self.results: list[Any] = []

    def _constant(self, value: np.ndarray) -> Any:
        value = np.asarray(value)
        # (np.ascontiguousarray would turn a scalar into a 1-element vector)
        return self.ops.constant(value if value.flags.c_contiguous else value.copy())

    def input(self, name: str, bins: int, channels: int) -> Any:
        parameter = self.ops.parameter([-1, -1, bins, channels], np.float32, name=name)
        parameter.output(0).get_tensor().set_names({name})
        self.parameters.append(parameter)
        return self.ops.transpose(parameter, self._constant(np.array([0, 3, 1, 2])))

    def output(self, name: str, value: Any) -> None:
        transposed = self.ops.transpose(value, self._constant(np.array([0, 2, 3, 1])))
        transposed.output(0).get_tensor().set_names({name})
        self.results.append(self.ops.result(transposed))

    def _bias(self, x: Any, bias: np.ndarray) -> Any:
        return self.ops.add(x, self._constant(bias.reshape(1, -1, 1, 1)))

    def conv(self, x, kernel, bias, strides, pads, dilations) -> Any:
        convolved = self.ops.convolution(
            x,
            self._constant(kernel),
            strides=list(strides),
            pads_begin=list(pads[:2]),
            pads_end=list(pads[2:]),
            dilations=list(dilations),
        )
        return self._bias(convolved, bias)

    def deconv(self, x, kernel, bias) -> Any:
        convolved = self.ops.convolution_backprop_data(
            x,
            self._constant(kernel),
            strides=[2, 2],
            pads_begin=[1, 1],
            pads_end=[2, 2],
            dilations=[1, 1],
        )
        return self._bias(convolved, bias)

    def scale_shift(self, x, scale, shift) -> Any:
        scaled = self.ops.multiply(x, self._constant(scale.reshape(1, -1, 1, 1)))
        return self.ops.add(scaled, self._constant(shift.reshape(1, -1, 1, 1)))

    def activation(self, kind: str, x: Any) -> Any:
        if kind == "ReLU":
            return self.ops.relu(x)
        if kind == "ELU":
            return self.ops.elu(x, 1.0)
        return self.ops.prelu(x, self._constant(np.array([LEAKY_SLOPE], np.float32)))

    def concat(self, values: list[Any]) -> Any:
        return self.ops.concat(values, 1)

    def sigmoid(self, x: Any) -> Any:
        return self.ops.sigmoid(x)

    def softmax_across(self, values: list[Any]) -> list[Any]:
        axis = self._constant(np.array([4]))
        stacked = self.ops.concat([self.ops.unsqueeze(v, axis) for v in values], 4)
        normalised = self.ops.softmax(stacked, 4)
        return [
            self.ops.gather(normalised, self._constant(np.array(k)), self._constant(np.array(4)))
            for k in range(len(values))
        ]

    def multiply(self, a: Any, b: Any) -> Any:
        return self.ops.multiply(a, b)

    def finish(self) -> Any:
        """The ``openvino.Model``."""
        return self.openvino.Model(self.results, self.parameters, "spleeter_unet")


def openvino_model(
    openvino: Any, write: Callable[..., None], params: dict[str, Any], weights: WeightReader
) -> Any:
    """The ``openvino.Model`` that the registry's graph function ``write`` describes."""
    writer = OpenVinoWriter(openvino)
    write(writer, params, weights)
    return writer.finish()
