"""Plug in an externally trained encoder: convert a state dict into an encoder directory.

The interchange format is a PyTorch-style state dict saved as ``.npz`` (one array per name,
PyTorch layouts: ``Linear.weight`` is ``(out, in)``, ``Conv1d.weight`` is ``(out, in / groups,
kernel)``), with Hugging Face ``HubertModel`` names wherever the architecture is HuBERT's:

``ssl_encoder/<ours>`` <-> ``<interface name>`` (``kernel``/``gamma`` <-> ``weight``,
``bias``/``beta`` <-> ``bias``), see :data:`MODULES` and the table in docs/ssl.md:

* ``conv_<i>`` <-> ``feature_extractor.conv_layers.<i>.conv``
* ``feature_layer_norm``, ``feature_projection`` <-> ``feature_projection.layer_norm``,
  ``feature_projection.projection``; ``mask_embedding`` <-> ``masked_spec_embed``
* ``pos_conv`` <-> ``encoder.pos_conv_embed.conv``; ``layer_norm`` <-> ``encoder.layer_norm``
* ``layer_<i>/{layer_norm, attention/{q,k,v,out}_proj, final_layer_norm}`` <->
  ``encoder.layers.<i>.{layer_norm, attention.{q,k,v,out}_proj, final_layer_norm}``
* ``layer_<i>/{intermediate_dense, output_dense}`` <->
  ``encoder.layers.<i>.feed_forward.{intermediate_dense, output_dense}``

So the transformer of a HuBERT-Large / WavLM-Large-style checkpoint ("stable layer norm":
pre-norm layers, a final layer norm) maps name for name (a common prefix such as ``hubert.``
is removed; a weight-normed position convolution, ``weight_g`` / ``weight_v`` or
``parametrizations.weight.original0`` / ``original1``, is folded). Its front end cannot: those
models read 16 kHz waveforms through a strided CNN (20 ms hop), ours reads log-mel frames on
the separator's STFT grid (hop ``frame_step``); the converter refuses a front end of another
shape. An encoder trained elsewhere on our front end (any framework, same architecture)
converts completely.

Usage::

    python -m spleeter.ssl.convert import STATE.npz -p ARCH.json -o ENCODER_DIR
    python -m spleeter.ssl.convert export ENCODER_DIR -o STATE.npz

``ARCH.json`` is an ``encoder.json`` (``encoder`` and ``audio`` sections) or a spleeter
configuration with ``model.params.encoder`` (its signal keys give the ``audio`` section). A
PyTorch checkpoint becomes an ``.npz`` with
``numpy.savez("state.npz", **{k: v.numpy() for k, v in torch.load(path).items()})``.
"""

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .. import SpleeterError
from ..model.encoder_config import EncoderConfig
from .config import encoder_config
from .encoder import EncoderAudio

MODULES: tuple[tuple[str, str, str], ...] = (
    (r"conv_(\d+)", r"feature_extractor.conv_layers.\1.conv", "conv"),
    (r"feature_layer_norm", "feature_projection.layer_norm", "norm"),
    (r"feature_projection", "feature_projection.projection", "linear"),
    (r"pos_conv", "encoder.pos_conv_embed.conv", "conv"),
    (r"layer_(\d+)/layer_norm", r"encoder.layers.\1.layer_norm", "norm"),
    (r"layer_(\d+)/attention/(q|k|v|out)_proj", r"encoder.layers.\1.attention.\2_proj", "linear"),
    (r"layer_(\d+)/final_layer_norm", r"encoder.layers.\1.final_layer_norm", "norm"),
    (
        r"layer_(\d+)/intermediate_dense",
        r"encoder.layers.\1.feed_forward.intermediate_dense",
        "linear",
    ),
    (r"layer_(\d+)/output_dense", r"encoder.layers.\1.feed_forward.output_dense", "linear"),
    (r"layer_norm", "encoder.layer_norm", "norm"),
)
"""(our module path, interface module name, kind) for every weighted module of the encoder."""

_VARIABLES = {"kernel": "weight", "gamma": "weight", "bias": "bias", "beta": "bias"}
_KNOWN_ROOTS = ("feature_extractor.", "feature_projection.", "encoder.", "masked_spec_embed")


def interface_name(path: str) -> tuple[str, str]:
    """``(interface name, kind)`` of an encoder variable path ``ssl_encoder/...``.

    ``kind`` says how the value is laid out: ``conv`` (Keras ``(k, in, out)`` vs PyTorch
    ``(out, in, k)``), ``linear`` (transposed), ``norm`` / ``vector`` (as is).
    """
    local = path.split(":")[0].split("/", 1)[1]
    if local == "mask_embedding":
        return "masked_spec_embed", "vector"
    module, _, variable = local.rpartition("/")
    for pattern, template, kind in MODULES:
        if re.fullmatch(pattern, module):
            name = re.sub(pattern, template, module)
            return f"{name}.{_VARIABLES[variable]}", kind if variable == "kernel" else "vector"
    raise SpleeterError(f"No interface name for encoder variable {path}")


def to_interface(value: np.ndarray, kind: str) -> np.ndarray:
    if kind == "conv":
        return np.ascontiguousarray(np.transpose(value, (2, 1, 0)))
    if kind == "linear":
        return np.ascontiguousarray(value.T)
    return value


def from_interface(value: np.ndarray, kind: str) -> np.ndarray:
    # both transposes are their own inverse
    return to_interface(value, kind)


def fold_weight_norm(magnitude: np.ndarray, direction: np.ndarray, dim: int = 2) -> np.ndarray:
    """PyTorch ``weight_norm(dim=dim)``: ``magnitude * direction / ||direction||`` with the norm
    over every axis but ``dim``."""
    axes = tuple(axis for axis in range(direction.ndim) if axis != dim)
    norm = np.sqrt(np.sum(direction.astype(np.float64) ** 2, axis=axes, keepdims=True))
    return (magnitude * direction / norm).astype(np.float32)


def normalise_state(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Remove a common model prefix (``hubert.``, ``wav2vec2.``...) and fold a weight-normed
    position convolution."""
    state = dict(state)
    prefixes = set()
    for name in state:
        for root in _KNOWN_ROOTS:
            at = name.find(root)
            if at > 0 and name[at - 1] == ".":
                prefixes.add(name[:at])
                break
    for prefix in prefixes:
        state = {k.removeprefix(prefix): v for k, v in state.items()}
    conv = "encoder.pos_conv_embed.conv"
    for g, v in (
        (f"{conv}.weight_g", f"{conv}.weight_v"),
        (f"{conv}.parametrizations.weight.original0", f"{conv}.parametrizations.weight.original1"),
    ):
        if f"{conv}.weight" not in state and g in state and v in state:
            state[f"{conv}.weight"] = fold_weight_norm(state.pop(g), state.pop(v))
    return state


def export_state(network: Any) -> dict[str, np.ndarray]:
    """The interface state dict of an encoder network (``EncoderNetwork``)."""
    state = {}
    for variable in network.weights:
        name, kind = interface_name(variable.path)
        state[name] = to_interface(np.asarray(variable.numpy(), dtype=np.float32), kind)
    return state


def import_state(network: Any, state: dict[str, np.ndarray]) -> list[str]:
    """Assign ``network``'s variables from an interface state dict; return the unused names.

    Raises:
        SpleeterError: names missing or of another shape (all listed; a front end of another
            shape is explained).
    """
    state = normalise_state(state)
    problems, assignments = [], []
    for variable in network.weights:
        name, kind = interface_name(variable.path)
        if name not in state:
            problems.append(f"{name} missing")
            continue
        value = from_interface(np.asarray(state[name], dtype=np.float32), kind)
        if tuple(value.shape) != tuple(variable.shape):
            problems.append(
                f"{name} has shape {tuple(state[name].shape)}, the architecture needs "
                f"{tuple(to_interface(np.zeros(variable.shape), kind).shape)}"
            )
            continue
        assignments.append((variable, value))
    if problems:
        front = any(p.startswith("feature_extractor.") for p in problems)
        hint = (
            " (the front end differs: waveform front ends such as HuBERT's or WavLM's cannot be "
            "converted, see docs/ssl.md)"
            if front
            else ""
        )
        more = f" and {len(problems) - 3} more" if len(problems) > 3 else ""
        raise SpleeterError(
            f"The state dict does not fit the architecture: {'; '.join(problems[:3])}{more}{hint}"
        )
    for variable, value in assignments:
        variable.assign(value)
    used = {interface_name(v.path)[0] for v in network.weights}
    return sorted(set(state) - used)


def read_architecture(path: str) -> tuple[EncoderConfig, EncoderAudio]:
    """The architecture of an ``encoder.json`` or of a configuration's encoder."""
    from ..utils.configuration import load_configuration
    from .encoder import description_config

    params = load_configuration(path)
    if "encoder" in params and "audio" in params:
        return description_config(params)
    return encoder_config(params), EncoderAudio.from_params(params)


def load_state(path: str) -> dict[str, np.ndarray]:
    try:
        with np.load(path) as stored:
            return {name: stored[name] for name in stored.files}
    except (OSError, ValueError) as error:
        raise SpleeterError(f"{path} is not a readable .npz state dict: {error}") from error


def import_encoder(state_path: str, architecture: str, output: str) -> str:
    """Write the encoder directory ``output`` from a state dict; return its checkpoint."""
    from ..engines.tensorflow import import_tensorflow
    from .encoder import build_feature_model, write_encoder

    config, audio = read_architecture(architecture)
    import_tensorflow()
    _, network = build_feature_model(config, audio)
    unused = import_state(network, load_state(state_path))
    if unused:
        from ..utils.logging import logger

        logger.warning(f"{len(unused)} name(s) of the state dict unused, e.g. {unused[0]}")
    return write_encoder(
        output, network, config, audio, 0, {"converted_from": os.path.abspath(state_path)}
    )


def export_encoder(directory: str, output: str) -> Path:
    """Write the interface state dict (``.npz``) of the encoder in ``directory``."""
    from ..engines.tensorflow import import_tensorflow
    from ..model.checkpoint import find_checkpoint, load_checkpoint
    from .encoder import build_feature_model, description_config, read_description, variables_view

    config, audio = description_config(read_description(directory))
    import_tensorflow()
    _, network = build_feature_model(config, audio)
    load_checkpoint(variables_view(network), find_checkpoint(directory))
    target = Path(output)
    target.parent.mkdir(parents=True, exist_ok=True)
    np.savez(target, **export_state(network))
    return target


def main(argv: list[str] | None = None) -> int:
    """``python -m spleeter.ssl.convert``: ``import`` or ``export`` (one-line errors, exit 1)."""
    from ..utils.logging import logger

    parser = argparse.ArgumentParser(
        prog="python -m spleeter.ssl.convert",
        description="Convert SSL encoders between spleeter encoder directories and .npz state "
        "dicts (PyTorch layouts, Hugging Face HuBERT names; see docs/ssl.md)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    importer = commands.add_parser("import", help="state dict (.npz) -> encoder directory")
    importer.add_argument("state", help=".npz state dict")
    importer.add_argument(
        "-p", "--architecture", required=True, help="encoder.json or configuration"
    )
    importer.add_argument("-o", "--output", required=True, help="encoder directory to write")
    exporter = commands.add_parser("export", help="encoder directory -> state dict (.npz)")
    exporter.add_argument("directory", help="encoder directory (spleeter pretrain's encoder_dir)")
    exporter.add_argument("-o", "--output", required=True, help=".npz file to write")
    arguments = parser.parse_args(argv)
    try:
        if arguments.command == "import":
            prefix = import_encoder(arguments.state, arguments.architecture, arguments.output)
            logger.info(f"Encoder written to {prefix}")
        else:
            target = export_encoder(arguments.directory, arguments.output)
            logger.info(f"State dict written to {target}")
    except SpleeterError as error:
        logger.error(str(error))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
