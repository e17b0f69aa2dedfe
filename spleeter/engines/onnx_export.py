"""Export a configuration's network to ONNX, and find (or make) the ONNX file of a model.

The exported graph is the network alone: input ``"<mix_name>_spectrogram"`` of shape
``(batch, frames, F, n_channels)`` with dynamic batch and frame axes, one output
``"<instrument>_spectrogram"`` per instrument (or the outputs the registry names, e.g. a deep
clustering network's ``"embedding"``). STFT, masks and inverse STFT stay in the shared
numpy pipeline, so both engines run the same signal processing around it. The file carries the
configuration, the instrument list and a fingerprint of the checkpoint it came from as
metadata, so an exported model is self-describing and a stale one is recognised.
"""

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .. import SpleeterError
from ..model import architecture, build_model, model_type
from ..model.checkpoint import find_checkpoint, load_checkpoint, tensor_reader
from ..utils.logging import logger
from ..utils.versions import package_version

ONNX_FILENAME = "model.onnx"
DEFAULT_OPSET = 17
EXPORT_FORMAT = 3
"""Bumped when the exported graph changes, so older exports are redone."""

METADATA_CONFIG = "spleeter.config"
METADATA_INSTRUMENTS = "spleeter.instruments"
METADATA_MODEL_TYPE = "spleeter.model_type"
METADATA_FINGERPRINT = "spleeter.fingerprint"
METADATA_BYTES = "spleeter.onnx_bytes"
METADATA_SHA256 = "spleeter.onnx_sha256"
METADATA_VERSION = "spleeter.version"
METADATA_OPSET = "spleeter.opset"

_ONE = np.array(1.0, dtype=np.float32)

_NETWORK_KEYS = ("mix_name", "instrument_list", "F", "n_channels", "model")
"""The configuration keys that change the network (and so the exported graph)."""


def fingerprint(params: dict[str, Any], checkpoint: str) -> str:
    """Identifies the network of ``params`` with the weights of ``checkpoint``.

    The checkpoint's index file records a CRC32C of every tensor, so hashing it identifies the
    weights without reading them; the data files' sizes are added so that a checkpoint cut
    short after an export is read (and refused) rather than hidden behind the old export.
    """
    digest = hashlib.sha256()
    digest.update(f"export-format-{EXPORT_FORMAT}".encode())
    network = {key: params.get(key) for key in _NETWORK_KEYS}
    digest.update(json.dumps(network, sort_keys=True).encode())
    digest.update(Path(f"{checkpoint}.index").read_bytes())
    for data in sorted(Path(checkpoint).parent.glob(f"{Path(checkpoint).name}.data-*")):
        digest.update(f"{data.name}:{data.stat().st_size}".encode())
    return digest.hexdigest()


def export_onnx(
    params: dict[str, Any],
    model_dir: str,
    output: str | os.PathLike,
    opset: int = DEFAULT_OPSET,
    announce: bool = True,
) -> Path:
    """Write the ONNX graph of ``params``' network with the weights in ``model_dir``.

    Networks the registry gives an ONNX builder (the U-Nets) are built straight from the
    checkpoint's tensors, without TensorFlow; the others are traced from Keras by tf2onnx. The
    file is written to a temporary name and renamed into place.

    Raises:
        SpleeterError: no checkpoint, a mismatched checkpoint, or a conversion failure.
    """
    checkpoint = find_checkpoint(model_dir)
    instruments = list(params["instrument_list"])
    write = architecture(params).graph_function()
    how = "from its checkpoint's tensors" if write else "with tf2onnx"
    message = f"Exporting {model_type(params)} from {checkpoint} to ONNX (opset {opset}, {how})"
    (logger.info if announce else logger.debug)(message)
    if write is not None:
        from .onnx_graph import onnx_graph

        proto = onnx_graph(write, params, tensor_reader(checkpoint), opset)
        _precise_sigmoids(proto)
    else:
        proto = _traced_graph(params, checkpoint, opset)
    metadata = {
        METADATA_CONFIG: json.dumps(params),
        METADATA_INSTRUMENTS: json.dumps(instruments),
        METADATA_MODEL_TYPE: model_type(params),
        METADATA_FINGERPRINT: fingerprint(params, checkpoint),
        METADATA_VERSION: package_version("spleeter", "unknown"),
        METADATA_OPSET: str(opset),
    }
    description = f"Spleeter {model_type(params)} network ({', '.join(instruments)})"
    return save_onnx(proto, output, metadata, description)


def _traced_graph(params: dict[str, Any], checkpoint: str, opset: int) -> Any:
    """The Keras model of ``params`` with ``checkpoint``'s weights, converted by tf2onnx."""
    from .tensorflow import import_tensorflow

    tf = import_tensorflow()
    model = build_model(params)
    load_checkpoint(model, checkpoint)
    names = architecture(params).network_outputs(params)
    input_name = f"{params['mix_name']}_spectrogram"
    spec = tf.TensorSpec((None, None, params["F"], params["n_channels"]), tf.float32, input_name)

    def network(spectrogram: Any) -> list[Any]:
        outputs = model(spectrogram, training=False)
        return [outputs[name] for name in names]

    function = tf.function(network, input_signature=[spec], autograph=False)
    return convert_function(function, spec, opset, names, checkpoint)


def convert_function(
    function: Any, spec: Any, opset: int, output_names: list[str], source: str
) -> Any:
    """Convert a ``tf.function`` of one spectrogram-shaped input to an ONNX graph whose outputs
    are named ``output_names``, with readable dynamic axes and exact sigmoids."""
    import tf2onnx

    try:
        proto, _ = tf2onnx.convert.from_function(function, input_signature=[spec], opset=opset)
    except Exception as error:  # tf2onnx raises many exception types
        raise SpleeterError(f"ONNX export of {source} failed: {error}") from error
    _name_axes_and_outputs(proto, output_names)
    _precise_sigmoids(proto)
    return proto


def save_onnx(
    proto: Any, output: str | os.PathLike, metadata: dict[str, str], description: str
) -> Path:
    """Write ``proto`` with ``metadata`` to ``output`` (renamed into place once complete), and
    the same metadata to the sidecar ``<output>.json``."""
    import onnx

    onnx.helper.set_model_props(proto, metadata)
    proto.doc_string = description
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(f".{output.name}.{os.getpid()}.part")
    sidecar = _sidecar(output)
    sidecar_temporary = sidecar.with_name(f".{sidecar.name}.part")
    try:
        onnx.save(proto, str(temporary))
        # The sidecar repeats the metadata so that checking an export needs no 100 MB parse,
        # and records the file's size and hash so that a damaged export is never used.
        integrity = {
            METADATA_BYTES: str(temporary.stat().st_size),
            METADATA_SHA256: _sha256(temporary),
        }
        sidecar_temporary.write_text(json.dumps({**metadata, **integrity}, indent=1))
        os.replace(sidecar_temporary, sidecar)
        os.replace(temporary, output)
    except OSError as error:
        raise SpleeterError(f"Cannot write {output}: {error.strerror or error}") from error
    finally:
        temporary.unlink(missing_ok=True)
        sidecar_temporary.unlink(missing_ok=True)
    return output


def export_record(path: str | os.PathLike) -> dict[str, Any]:
    """What a model folder records of the export at ``path``: its size, hash, the fingerprint
    of the network and weights it was made from, and the opset-independent format."""
    metadata = read_metadata(path)
    return {
        "format": "onnx",
        "bytes": int(metadata.get(METADATA_BYTES) or Path(path).stat().st_size),
        "sha256": metadata.get(METADATA_SHA256) or _sha256(Path(path)),
        "fingerprint": metadata.get(METADATA_FINGERPRINT),
    }


def _sidecar(path: Path) -> Path:
    """``model.onnx`` -> ``model.onnx.json``: the export's metadata, readable at a glance."""
    return path.with_name(f"{path.name}.json")


def _name_axes_and_outputs(proto: Any, output_names: list[str]) -> None:
    """Give the graph outputs the instruments' names and the dynamic axes readable names."""
    graph = proto.graph
    renames = {output.name: name for output, name in zip(graph.output, output_names, strict=True)}
    for node in graph.node:
        node.input[:] = [renames.get(name, name) for name in node.input]
        node.output[:] = [renames.get(name, name) for name in node.output]
    for value in list(graph.input) + list(graph.output):
        value.name = renames.get(value.name, value.name)
        dims = value.type.tensor_type.shape.dim
        dims[0].dim_param, dims[1].dim_param = "batch", "frames"


def _precise_sigmoids(proto: Any) -> None:
    """Replace each ``Sigmoid`` node by ``1 / (1 + exp(-x))``.

    ONNX Runtime's CPU sigmoid is a fast approximation that flushes to zero below about -17
    and is off by a factor of two near it. The U-Net's masks multiply the mixture's magnitude,
    and ratio masks divide those products by each other, so where every instrument's mask is
    that small the approximation changes the separated sound audibly. ``Exp`` is accurate.
    """
    import onnx

    graph = proto.graph
    rewritten = []
    one = "spleeter_sigmoid_one"
    for node in graph.node:
        if node.op_type != "Sigmoid":
            rewritten.append(node)
            continue
        (x,), (y,) = node.input, node.output
        rewritten += [
            onnx.helper.make_node("Neg", [x], [f"{y}_negated"]),
            onnx.helper.make_node("Exp", [f"{y}_negated"], [f"{y}_exp"]),
            onnx.helper.make_node("Add", [f"{y}_exp", one], [f"{y}_denominator"]),
            onnx.helper.make_node("Reciprocal", [f"{y}_denominator"], [y]),
        ]
    if len(rewritten) != len(graph.node):
        graph.initializer.append(onnx.numpy_helper.from_array(_ONE, one))
        del graph.node[:]
        graph.node.extend(rewritten)


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The ``spleeter.*`` metadata of an exported ONNX file (from its sidecar when present)."""
    sidecar = _sidecar(Path(path))
    if sidecar.is_file():
        try:
            return dict(json.loads(sidecar.read_text()))
        except (OSError, ValueError):
            pass  # fall back to the model itself
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as error:  # onnx raises DecodeError and others
        raise SpleeterError(f"{path} is not a readable ONNX model: {error}") from error
    return {prop.key: prop.value for prop in proto.metadata_props}


def onnx_model_for(params: dict[str, Any], model_dir: str, export: bool = True) -> str | None:
    """The ONNX file of the model in ``model_dir``; exported (and cached) when needed and
    ``export`` is set, else None when there is no up-to-date one.

    A directory holding only ``model.onnx`` (as ``spleeter export -o`` writes) is used as it
    is, after checking that it was made for the same network. Next to a checkpoint,
    ``model.onnx`` counts only if made from that checkpoint for the same network; an export
    goes there, or to the user's cache directory when the model directory is not writable.
    """
    directory = Path(model_dir)
    local = directory / ONNX_FILENAME
    try:
        checkpoint = find_checkpoint(directory)
    except SpleeterError:
        if local.is_file():
            _check_network(params, local)
            problem = damage(local)
            if problem is not None:
                message = f"{local} is damaged ({problem}): export the model again"
                raise SpleeterError(message) from None
            return str(local)
        raise
    expected = fingerprint(params, checkpoint)
    cached = cache_directory() / f"{expected}.onnx"
    for candidate in (local, cached):
        if candidate.is_file() and read_metadata(candidate).get(METADATA_FINGERPRINT) == expected:
            problem = damage(candidate)
            if problem is None:
                return str(candidate)
            logger.warning(f"{candidate} is damaged ({problem}): not using it")
    if not export:
        return None
    target = local if os.access(directory, os.W_OK) else cached
    duration = "a few seconds" if architecture(params).graph else "about a minute"
    logger.info(
        f"Converting the model in {directory} to ONNX for ONNX Runtime: {duration}, once; "
        f"later runs reuse {target} (--engine tensorflow skips it)"
    )
    return str(export_onnx(params, str(directory), target, announce=False))


def export_is_current(
    params: dict[str, Any], checkpoint: str, path: str | os.PathLike, opset: int = DEFAULT_OPSET
) -> bool:
    """Whether ``path`` is an intact export of ``params``' network with ``checkpoint``'s
    weights at ``opset`` (an export that did not record its opset counts as the default one),
    so that exporting again would write the same file."""
    path = Path(path)
    if not path.is_file():
        return False
    metadata = read_metadata(path)
    if metadata.get(METADATA_FINGERPRINT) != fingerprint(params, checkpoint):
        return False
    if metadata.get(METADATA_OPSET, str(DEFAULT_OPSET)) != str(opset):
        return False
    return damage(path) is None


def damage(path: Path) -> str | None:
    """What is wrong with the export at ``path`` against the size and hash its sidecar
    recorded, or None (also for exports made before the sidecar recorded them)."""
    metadata = read_metadata(path)
    size = path.stat().st_size
    if METADATA_BYTES in metadata and str(size) != metadata[METADATA_BYTES]:
        return f"{size} bytes instead of {metadata[METADATA_BYTES]}"
    if METADATA_SHA256 in metadata and _sha256(path) != metadata[METADATA_SHA256]:
        return "its content does not match the hash recorded at export"
    return None


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _check_network(params: dict[str, Any], path: Path) -> None:
    """Raise if the ONNX file at ``path`` was exported for another network."""
    metadata = read_metadata(path)
    try:
        exported = json.loads(metadata[METADATA_CONFIG])
    except (KeyError, json.JSONDecodeError) as error:
        raise SpleeterError(
            f"{path} was not exported by spleeter (no configuration inside)"
        ) from error
    for key in _NETWORK_KEYS:
        if exported.get(key) != params.get(key):
            raise SpleeterError(
                f"{path} was exported for another network: {key} is {exported.get(key)!r} there "
                f"but {params.get(key)!r} in the configuration"
            )


def cache_directory() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "spleeter" / "onnx"
