"""Reading and writing TF1-format checkpoints with upstream Spleeter's variable names.

Upstream's models were trained with the TF1 Estimator, which saved every variable under its
Keras auto-name (``conv2d_7/kernel``, ``batch_normalization_12/moving_mean``...). Our Keras 3
layers carry the same names, so most variables map one to one. The BLSTM differs: upstream used
``CuDNNLSTM``, whose kernels are laid out for cuDNN (each gate's matrix transposed in memory),
whose bias holds separate input and recurrent halves (``8 * units``) and whose variables sit
directly under the layer's name; a standard Keras LSTM sums the two halves and nests its
variables under ``lstm_cell``.
"""

import glob
import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import SpleeterError

CHECKPOINT_STATE_FILE = "checkpoint"
_STEP_SUFFIX = re.compile(r"-(\d+)$")


@dataclass(frozen=True)
class VariableMapping:
    """How one Keras variable is stored in an upstream checkpoint."""

    keras_path: str
    checkpoint_name: str
    to_keras: Callable[[np.ndarray], np.ndarray]
    to_checkpoint: Callable[[np.ndarray], np.ndarray]


def _identity(value: np.ndarray) -> np.ndarray:
    return value


def _cudnn_kernel_to_keras(value: np.ndarray) -> np.ndarray:
    """A CuDNNLSTM kernel ``(inputs, 4 * units)`` -> the standard LSTM's.

    TensorFlow hands each gate's ``(inputs, units)`` slice to cuDNN as raw memory, which cuDNN
    reads as a row-major ``(units, inputs)`` matrix; the standard kernel is its transpose.
    """
    inputs, width = value.shape
    units = width // 4
    gates = np.split(value, 4, axis=1)
    return np.concatenate([np.ascontiguousarray(g).reshape(units, inputs).T for g in gates], axis=1)


def _keras_kernel_to_cudnn(value: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_cudnn_kernel_to_keras`."""
    inputs, width = value.shape
    units = width // 4
    gates = np.split(value, 4, axis=1)
    return np.concatenate([np.ascontiguousarray(g.T).reshape(inputs, units) for g in gates], axis=1)


def _sum_cudnn_bias(value: np.ndarray) -> np.ndarray:
    """CuDNN's (input bias, recurrent bias) pair -> the single bias of a standard LSTM."""
    half = value.shape[0] // 2
    return value[:half] + value[half:]


def _split_cudnn_bias(value: np.ndarray) -> np.ndarray:
    """A standard LSTM bias -> CuDNN's pair (all of it as input bias, zero recurrent bias)."""
    return np.concatenate([value, np.zeros_like(value)])


def variable_mapping(keras_path: str) -> VariableMapping:
    """The upstream checkpoint name of a Keras 3 variable path, and the value conversions."""
    name = keras_path.split(":")[0]
    if "/lstm_cell/" in name:
        name = name.replace("/lstm_cell/", "/")
        if name.endswith("/bias"):
            return VariableMapping(keras_path, name, _sum_cudnn_bias, _split_cudnn_bias)
        return VariableMapping(keras_path, name, _cudnn_kernel_to_keras, _keras_kernel_to_cudnn)
    return VariableMapping(keras_path, name, _identity, _identity)


def find_checkpoint(model_dir: str | os.PathLike) -> str:
    """The checkpoint prefix to load from ``model_dir`` (its latest checkpoint).

    Reads the ``checkpoint`` state file like ``tf.train.latest_checkpoint``, but also accepts a
    state file written on another machine (absolute path elsewhere) and a directory holding only
    ``*.index`` files (the highest step wins).
    """
    directory = Path(model_dir)
    if not directory.is_dir():
        raise SpleeterError(f"Model directory {directory} does not exist")
    candidates: list[Path] = []
    state = directory / CHECKPOINT_STATE_FILE
    if state.is_file():
        match = re.search(r'^model_checkpoint_path:\s*"(.*)"\s*$', state.read_text(), re.MULTILINE)
        if match:
            recorded = Path(match.group(1))
            candidates += [recorded if recorded.is_absolute() else directory / recorded]
            candidates.append(directory / recorded.name)
    for candidate in candidates:
        if Path(f"{candidate}.index").is_file():
            return str(candidate)
    indexes = sorted(directory.glob("*.index"), key=_checkpoint_step)
    if indexes:
        return str(indexes[-1].with_suffix(""))
    raise SpleeterError(
        f"Model directory {directory} has no checkpoint (expected a 'checkpoint' file and "
        "model files such as model.index / model.data-00000-of-00001)"
    )


def checkpoint_problem(model_dir: str | os.PathLike) -> str | None:
    """Why ``model_dir`` holds no loadable checkpoint (missing index or data shards, empty
    files), or None. Reads only file names and sizes, so it needs no TensorFlow."""
    try:
        prefix = Path(find_checkpoint(model_dir))
    except SpleeterError:
        return "no checkpoint index"
    index = Path(f"{prefix}.index")
    if index.stat().st_size == 0:
        return f"{index.name} is empty"
    shards = sorted(prefix.parent.glob(f"{glob.escape(prefix.name)}.data-*-of-*"))
    if not shards:
        return f"no {prefix.name}.data-* file"
    expected = int(shards[0].name.rsplit("-of-", 1)[1])
    if len(shards) != expected:
        return f"{len(shards)} of {expected} {prefix.name}.data-* files"
    return None


def checkpoint_fingerprint(prefix: str | os.PathLike) -> str:
    """Identifies a checkpoint's weights without reading them: the SHA-256 of its index file,
    which records a CRC32C of every tensor."""
    return hashlib.sha256(Path(f"{prefix}.index").read_bytes()).hexdigest()


def _checkpoint_step(index_file: Path) -> int:
    match = _STEP_SUFFIX.search(index_file.stem)
    return int(match.group(1)) if match else -1


def load_checkpoint(model: Any, prefix: str, optional: tuple[str, ...] = ()) -> list[str]:
    """Assign every variable of a Keras ``model`` from the upstream checkpoint at ``prefix``.

    The variables of layers Keras pruned from the model (the U-Net's dead deepest batch norm)
    are restored too when the checkpoint has them. Variables whose checkpoint names start with
    one of ``optional`` may be absent (they keep their values). Returns the checkpoint names
    that were not used (``global_step``, optimizer slots...).

    Raises:
        SpleeterError: a variable is missing from the checkpoint or has another shape; the
            message names it.
    """
    import tensorflow as tf

    try:
        reader = tf.train.load_checkpoint(prefix)
    except (tf.errors.OpError, ValueError) as error:
        raise SpleeterError(f"Checkpoint {prefix} cannot be read: {_first_line(error)}") from error
    available = reader.get_variable_to_shape_map()
    missing: list[str] = []
    mismatched: list[str] = []
    assignments = []
    for variable in sorted(model.weights, key=lambda v: _natural_key(v.path)):
        mapping = variable_mapping(variable.path)
        if mapping.checkpoint_name not in available:
            if not (optional and mapping.checkpoint_name.startswith(optional)):
                missing.append(mapping.checkpoint_name)
            continue
        value = mapping.to_keras(_read_tensor(reader, mapping.checkpoint_name, prefix))
        if tuple(value.shape) != tuple(variable.shape):
            mismatched.append(
                _shape_problem(
                    mapping.checkpoint_name, available[mapping.checkpoint_name], variable.shape
                )
            )
            continue
        assignments.append((variable, value))
    if missing:
        raise _missing_error(prefix, missing)
    if mismatched:
        raise _mismatch_error(prefix, mismatched)
    for variable, value in assignments:
        variable.assign(value.astype(variable.dtype, copy=False))
    used = {variable_mapping(v.path).checkpoint_name for v in model.weights}
    for variable in dead_variables(model):  # kept so that a re-saved model stays complete
        name = variable_mapping(variable.path).checkpoint_name
        if name in available and tuple(available[name]) == tuple(variable.shape):
            variable.assign(_read_tensor(reader, name, prefix))
            used.add(name)
    return sorted(set(available) - used)


def _shape_problem(name: str, found: Any, needed: Any) -> str:
    return (
        f"{name} has shape {tuple(found)} in the checkpoint but the configuration needs "
        f"{tuple(needed)}"
    )


def _missing_error(prefix: str, missing: list[str]) -> SpleeterError:
    more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
    return SpleeterError(
        f"Checkpoint {prefix} has no variable {missing[0]}{more}: it was not trained with "
        "this configuration's model type and instrument list"
    )


def _mismatch_error(prefix: str, mismatched: list[str]) -> SpleeterError:
    more = f" (and {len(mismatched) - 1} more)" if len(mismatched) > 1 else ""
    return SpleeterError(
        f"Checkpoint {prefix}: variable {mismatched[0]}{more}; check F, n_channels and the "
        "model params against the configuration it was trained with"
    )


def tensor_reader(prefix: str) -> Callable[[str, tuple[int, ...]], np.ndarray]:
    """``read(name, shape)``: one tensor of the checkpoint at ``prefix`` without TensorFlow
    (:mod:`.tensor_bundle`), with ``load_checkpoint``'s errors for a missing variable, another
    shape or damaged bytes."""
    from .tensor_bundle import BundleError, TensorBundle

    try:
        bundle = TensorBundle(prefix)
    except BundleError as error:
        raise SpleeterError(f"Checkpoint {prefix} cannot be read: {error}") from error

    def read(name: str, shape: tuple[int, ...]) -> np.ndarray:
        entry = bundle.entries.get(name)
        if entry is None:
            raise _missing_error(prefix, [name])
        if tuple(entry.shape) != tuple(shape):
            raise _mismatch_error(prefix, [_shape_problem(name, entry.shape, shape)])
        try:
            return bundle.tensor(name)
        except BundleError as error:
            raise SpleeterError(
                f"Checkpoint {prefix} is damaged ({error}); re-download or retrain the model"
            ) from error

    return read


def _read_tensor(reader: Any, name: str, prefix: str) -> np.ndarray:
    """One variable's value; a data file cut short or corrupted is one clear error, not
    TensorFlow's ``IndexError: Read less bytes than requested`` traceback."""
    import tensorflow as tf

    try:
        return reader.get_tensor(name)
    except (tf.errors.OpError, IndexError, ValueError, RuntimeError) as error:
        raise SpleeterError(
            f"Checkpoint {prefix} is damaged (variable {name}: {_first_line(error)}); "
            "re-download or retrain the model"
        ) from error


def _natural_key(name: str) -> list:
    """Sort key putting ``conv2d_2`` before ``conv2d_10`` (upstream's creation order)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "message", None) or error)
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__


def dead_variables(model: Any) -> list[Any]:
    """Variables of layers that were called while building ``model`` but whose outputs lead
    nowhere (Keras prunes those layers from the model: the U-Net's deepest batch norm)."""
    in_model = {id(layer) for layer in model.layers}
    seen: set[int] = set()
    dead: list[Any] = []
    pending = list(model.layers)
    while pending:
        operation = pending.pop()
        for node in getattr(operation, "_outbound_nodes", []):
            target = getattr(node, "operation", None)
            if target is None or id(target) in seen:
                continue
            seen.add(id(target))
            pending.append(target)
            if id(target) not in in_model:
                dead.extend(getattr(target, "weights", []))
    return sorted(dead, key=lambda v: v.path)


def save_checkpoint(
    model: Any,
    directory: str | os.PathLike,
    step: int = 0,
    extra: dict[str, np.ndarray] | None = None,
) -> str:
    """Write ``model``'s variables as a TF1-format checkpoint with upstream's names.

    The checkpoint is ``<directory>/model.ckpt-<step>`` and the ``checkpoint`` state file points
    at it (relatively, so the directory can move). ``global_step`` is included, as the
    Estimator wrote it, and so are the variables of layers Keras pruned from the model (the
    U-Net's dead deepest batch norm), which upstream's loader requires. ``extra`` adds more
    named tensors. Returns the checkpoint prefix.
    """
    tensors = {"global_step": np.asarray(step, dtype=np.int64)}
    for variable in [*model.weights, *dead_variables(model)]:
        mapping = variable_mapping(variable.path)
        tensors[mapping.checkpoint_name] = mapping.to_checkpoint(np.asarray(variable.numpy()))
    tensors.update(extra or {})
    return write_tensors(Path(directory) / f"model.ckpt-{step}", tensors)


def write_tensors(prefix: str | os.PathLike, tensors: dict[str, np.ndarray]) -> str:
    """Write named tensors as the TF1-format checkpoint ``prefix`` (with its ``.meta``) and
    point the folder's ``checkpoint`` state file at it; return the prefix."""
    import tensorflow as tf

    prefix = Path(prefix)
    directory = prefix.parent
    directory.mkdir(parents=True, exist_ok=True)
    names = sorted(tensors)
    tf.raw_ops.SaveV2(
        prefix=str(prefix),
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tf.constant(tensors[name]) for name in names],
    )
    write_meta_graph(str(prefix), {name: tensors[name] for name in names})
    state = f'model_checkpoint_path: "{prefix.name}"\nall_model_checkpoint_paths: "{prefix.name}"\n'
    temporary = directory / f".{CHECKPOINT_STATE_FILE}.tmp"
    temporary.write_text(state)
    os.replace(temporary, directory / CHECKPOINT_STATE_FILE)
    return str(prefix)


def write_meta_graph(prefix: str, tensors: dict[str, np.ndarray]) -> str:
    """Write ``<prefix>.meta``, the MetaGraph upstream's trainer wrote next to a checkpoint.

    It holds one variable per checkpoint tensor (same names, shapes and types) and the saver
    that restores them, so ``tf.compat.v1.train.import_meta_graph(...).restore(...)`` works;
    the network itself is rebuilt from the configuration, not from this graph.
    """
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        variables = {
            name: tf.compat.v1.get_variable(
                name,
                shape=value.shape,
                dtype=tf.as_dtype(value.dtype),
                initializer=tf.compat.v1.zeros_initializer(),
                use_resource=False,
            )
            for name, value in tensors.items()
        }
        saver = tf.compat.v1.train.Saver(variables, sharded=False)
        path = f"{prefix}.meta"
        temporary = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.tmp")
        saver.export_meta_graph(temporary)
        os.replace(temporary, path)
    return path
