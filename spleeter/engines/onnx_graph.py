"""An ONNX graph writer for the networks the registry describes without TensorFlow
(:mod:`spleeter.model.unet_graph`): what ``spleeter export`` and ONNX Runtime run."""

from collections.abc import Callable
from typing import Any

import numpy as np

from ..model.unet_graph import LEAKY_SLOPE, WeightReader


class OnnxWriter:
    """Accumulates nodes, and initialisers with unique names written straight into the model's
    ``GraphProto``: building ``TensorProto``s apart and handing them to ``helper.make_graph`` /
    ``make_model`` copies the 150 MB of weights three more times."""

    def __init__(self, opset: int, graph_name: str = "spleeter_unet") -> None:
        from onnx import helper

        self.model = helper.make_model(
            helper.make_graph([], graph_name, [], []),
            opset_imports=[helper.make_opsetid("", opset)],
        )
        self.nodes: list[Any] = []
        self._shape: list[Any] = []
        self._count = 0

    def _name(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def _constant(self, stem: str, value: np.ndarray) -> str:
        from onnx import helper

        name = self._name(stem)
        value = np.asarray(value)
        tensor = self.model.graph.initializer.add()
        tensor.name = name
        tensor.data_type = helper.np_dtype_to_tensor_dtype(value.dtype)
        tensor.dims.extend(value.shape)
        tensor.raw_data = value.tobytes()  # C order, whatever the array's layout
        return name

    def _node(self, op: str, inputs: list[str], output: str | None = None, **attributes) -> str:
        from onnx import helper

        output = output or self._name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [output], **attributes))
        return output

    def input(self, name: str, bins: int, channels: int) -> str:
        from onnx import TensorProto, helper

        self._shape = ["batch", "frames", bins, channels]
        self.model.graph.input.append(
            helper.make_tensor_value_info(name, TensorProto.FLOAT, self._shape)
        )
        return self._node("Transpose", [name], perm=[0, 3, 1, 2])

    def output(self, name: str, value: str) -> None:
        from onnx import TensorProto, helper

        self._node("Transpose", [value], output=name, perm=[0, 2, 3, 1])
        self.model.graph.output.append(
            helper.make_tensor_value_info(name, TensorProto.FLOAT, self._shape)
        )

    def conv(self, x, kernel, bias, strides, pads, dilations) -> str:
        return self._node(
            "Conv",
            [x, self._constant("kernel", kernel), self._constant("bias", bias)],
            kernel_shape=list(kernel.shape[2:]),
            strides=list(strides),
            pads=list(pads),  # ONNX: begins, then ends
            dilations=list(dilations),
        )

    def deconv(self, x, kernel, bias) -> str:
        return self._node(
            "ConvTranspose",
            [x, self._constant("kernel", kernel), self._constant("bias", bias)],
            kernel_shape=list(kernel.shape[2:]),
            strides=[2, 2],
            pads=[1, 1, 2, 2],
        )

    def scale_shift(self, x, scale, shift) -> str:
        per_channel = (-1, 1, 1)
        scaled = self._node("Mul", [x, self._constant("scale", scale.reshape(per_channel))])
        return self._node("Add", [scaled, self._constant("shift", shift.reshape(per_channel))])

    def activation(self, kind: str, x: str) -> str:
        if kind == "ReLU":
            return self._node("Relu", [x])
        if kind == "ELU":
            return self._node("Elu", [x], alpha=1.0)
        return self._node("LeakyRelu", [x], alpha=LEAKY_SLOPE)

    def concat(self, values: list[str]) -> str:
        return self._node("Concat", values, axis=1)

    def sigmoid(self, x: str) -> str:
        return self._node("Sigmoid", [x])

    def softmax_across(self, values: list[str]) -> list[str]:
        axis = self._constant("axis", np.array([4]))
        stacked = self._node("Concat", [self._node("Unsqueeze", [v, axis]) for v in values], axis=4)
        normalised = self._node("Softmax", [stacked], axis=4)
        return [
            self._node("Gather", [normalised, self._constant("index", np.array(k))], axis=4)
            for k in range(len(values))
        ]

    def multiply(self, a: str, b: str) -> str:
        return self._node("Mul", [a, b])

    def finish(self) -> Any:
        """The ``onnx.ModelProto``."""
        self.model.graph.node.extend(self.nodes)
        return self.model


def onnx_graph(
    write: Callable[..., None], params: dict[str, Any], weights: WeightReader, opset: int
) -> Any:
    """The ONNX model that the registry's graph function ``write`` describes."""
    writer = OnnxWriter(opset)
    write(writer, params, weights)
    return writer.finish()
