"""Training checkpoints in upstream's TF1 format, with everything needed to resume exactly.

A checkpoint ``model.ckpt-<step>`` holds what upstream's Estimator wrote, under the same names:
the model's variables, ``global_step``, the optimizer slots (Adam: ``<var>/Adam`` and
``<var>/Adam_1``, ``beta1_power``, ``beta2_power``; Adadelta: ``<var>/Adadelta`` and
``<var>/Adadelta_1``), and the batch norm of each U-Net's deepest level, which upstream's graph
computes but never uses (Keras 3 prunes it from the model; upstream's loader needs it). So
upstream's ``separate`` loads these checkpoints, and upstream's own training checkpoints resume
here. Two more tensors make a resumed run continue exactly: the dropout random generators'
states and, under mixed precision, the loss scale (upstream's loader ignores unknown names).
The ``checkpoint`` state file lists the two latest checkpoints; older ones are deleted, like
upstream's ``keep_checkpoint_max=2``.
"""

import dataclasses
import glob
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from .. import SpleeterError
from ..model.checkpoint import (
    CHECKPOINT_STATE_FILE,
    VariableMapping,
    find_checkpoint,
    load_checkpoint,
    save_checkpoint,
    variable_mapping,
)
from ..utils.logging import logger

KEEP_CHECKPOINTS = 2
"""Checkpoints kept in a model directory (upstream's ``keep_checkpoint_max``)."""

OPTIMIZER_SLOTS: dict[str, tuple[tuple[str, str], ...]] = {
    "Adam": (("_momentums", "Adam"), ("_velocities", "Adam_1")),
    "AdamW": (("_momentums", "Adam"), ("_velocities", "Adam_1")),
    "Adadelta": (("_accumulated_grads", "Adadelta"), ("_accumulated_delta_vars", "Adadelta_1")),
    "SGD": (),
    "ScaledAdam": (
        ("_deltas", "ScaledAdam"),
        ("_exp_avg_sqs", "ScaledAdam_1"),
        ("_scale_exp_avg_sqs", "ScaledAdam_2"),
    ),
}
"""Keras optimizer class -> (attribute holding its slot variables, TF1 slot name suffix). A
slot shaped like its variable is stored in the variable's checkpoint layout; a per-tensor one
(ScaledAdam's scale statistics) as it is."""

SEED_STATE_PREFIX = "spleeter_training/seed_generator_"
"""Names of the dropout random generator states (ours; not in upstream checkpoints)."""

ITERATIONS_NAME = "spleeter_training/optimizer_iterations"
"""Updates the optimizer applied (ours; equals ``global_step`` unless mixed precision skipped
steps with non-finite gradients)."""

LOSS_SCALE_NAMES = ("loss_scale/current_loss_scale", "loss_scale/good_steps")
"""Names of the dynamic loss scale and its counter (mixed precision)."""


def is_training_state(name: str) -> bool:
    """Whether checkpoint tensor ``name`` only serves to resume training (optimizer slots and
    powers, random generator states, optimizer iterations, loss scale), not to separate."""
    suffixes = {f"/{suffix}" for kinds in OPTIMIZER_SLOTS.values() for _, suffix in kinds}
    return (
        name.endswith(tuple(suffixes))
        or name in ("beta1_power", "beta2_power", ITERATIONS_NAME, *LOSS_SCALE_NAMES)
        or name.startswith(SEED_STATE_PREFIX)
    )


def inner_optimizer(optimizer: Any) -> Any:
    """The optimizer that owns the slots (unwrapping a ``LossScaleOptimizer``)."""
    return getattr(optimizer, "inner_optimizer", optimizer)


def seed_states(model: Any) -> list[Any]:
    """The random generator states of the model's stochastic layers (dropout), in order."""
    return [v for v in model.variables if v.path.endswith("seed_generator_state")]


def training_tensors(model: Any, optimizer: Any) -> dict[str, np.ndarray]:
    """Every checkpoint tensor besides the model's variables and ``global_step``."""
    tensors: dict[str, np.ndarray] = {}
    inner = inner_optimizer(optimizer)
    for (attribute, suffix), variable, slot in _slots(model, inner):
        del attribute
        mapping = _slot_mapping(variable, slot)
        tensors[f"{mapping.checkpoint_name}/{suffix}"] = mapping.to_checkpoint(
            np.asarray(slot.numpy())
        )
    iterations = int(inner.iterations.numpy())
    tensors[ITERATIONS_NAME] = np.asarray(iterations, dtype=np.int64)
    if type(inner).__name__ in ("Adam", "AdamW"):
        for name, beta in (("beta1_power", inner.beta_1), ("beta2_power", inner.beta_2)):
            tensors[name] = np.asarray(float(beta) ** (iterations + 1), dtype=np.float32)
    for index, state in enumerate(seed_states(model)):
        tensors[f"{SEED_STATE_PREFIX}{index}"] = np.asarray(state.numpy())
    if hasattr(optimizer, "dynamic_scale"):
        scale, counter = LOSS_SCALE_NAMES
        tensors[scale] = np.asarray(optimizer.dynamic_scale.numpy())
        tensors[counter] = np.asarray(optimizer.step_counter.numpy())
    return tensors


def _slot_mapping(variable: Any, slot: Any) -> VariableMapping:
    """How ``slot`` of ``variable`` is stored: in the variable's checkpoint layout when shaped
    like it, as it is when it holds one statistic per tensor (ScaledAdam's)."""
    mapping = variable_mapping(variable.path)
    if tuple(slot.shape) == tuple(variable.shape):
        return mapping
    return dataclasses.replace(mapping, to_keras=np.asarray, to_checkpoint=np.asarray)


def _slots(model: Any, inner: Any) -> list[tuple[tuple[str, str], Any, Any]]:
    """(slot kind, model variable, slot variable) for every slot of ``inner``."""
    kinds = OPTIMIZER_SLOTS.get(type(inner).__name__)
    if kinds is None:
        raise SpleeterError(f"Optimizer {type(inner).__name__} is not supported for training")
    result = []
    for kind in kinds:
        slots = getattr(inner, kind[0])
        for variable in model.trainable_variables:
            result.append((kind, variable, slots[inner._get_variable_index(variable)]))
    return result


def save(model_dir: str, model: Any, optimizer: Any, step: int) -> str:
    """Write ``model.ckpt-<step>`` and keep only the latest checkpoints; return its prefix."""
    state = Path(model_dir) / CHECKPOINT_STATE_FILE
    listed = re.findall(r'^all_model_checkpoint_paths:\s*"(.*)"\s*$', _read(state), re.MULTILINE)
    prefix = save_checkpoint(model, model_dir, step, training_tensors(model, optimizer))
    _update_state(Path(model_dir), Path(prefix).name, [Path(entry).name for entry in listed])
    return prefix


def _update_state(directory: Path, name: str, listed: list[str]) -> None:
    """Point the state file at ``name`` after the ``listed`` checkpoints, keeping the latest
    ones; delete the files of the older ones."""
    state = directory / CHECKPOINT_STATE_FILE
    names = [entry for entry in listed if entry != name] + [name]
    kept, dropped = names[-KEEP_CHECKPOINTS:], names[:-KEEP_CHECKPOINTS]
    lines = [f'model_checkpoint_path: "{name}"']
    lines += [f'all_model_checkpoint_paths: "{entry}"' for entry in kept]
    temporary = directory / f".{CHECKPOINT_STATE_FILE}.tmp"
    temporary.write_text("\n".join(lines) + "\n")
    os.replace(temporary, state)
    for entry in dropped:
        for path in glob.glob(glob.escape(str(directory / entry)) + ".*"):
            try:
                os.remove(path)
            except OSError as error:
                logger.warning(f"Cannot delete old checkpoint file {path}: {error}")


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def latest_checkpoint(model_dir: str) -> str | None:
    """The checkpoint to resume from in ``model_dir``, or None if it has none."""
    if not os.path.isdir(model_dir):
        return None
    try:
        return find_checkpoint(model_dir)
    except SpleeterError:
        return None


def restore(prefix: str, model: Any, optimizer: Any) -> int:
    """Load a training checkpoint (ours or upstream's) into ``model`` and ``optimizer``.

    Weights are required; the optimizer's state, the dead variables, the random generator
    states and the loss scale are restored when present (a warning says when the optimizer
    state is not). Returns the checkpoint's ``global_step`` (0 when it has none).
    """
    import tensorflow as tf

    load_checkpoint(model, prefix)
    reader = tf.train.load_checkpoint(prefix)
    available = reader.get_variable_to_shape_map()
    step = int(reader.get_tensor("global_step")) if "global_step" in available else 0
    inner = inner_optimizer(optimizer)
    slots = _slots(model, inner)
    names = {
        id(slot): f"{variable_mapping(variable.path).checkpoint_name}/{suffix}"
        for (_, suffix), variable, slot in slots
    }
    absent = [name for name in names.values() if name not in available]
    if absent:
        logger.warning(
            f"{prefix} has no {type(inner).__name__} state (e.g. {absent[0]}): the optimizer "
            "starts afresh"
        )
    else:
        for _, variable, slot in slots:
            value = _slot_mapping(variable, slot).to_keras(reader.get_tensor(names[id(slot)]))
            slot.assign(value.astype(slot.dtype, copy=False))
        iterations = step
        if ITERATIONS_NAME in available:
            iterations = int(reader.get_tensor(ITERATIONS_NAME))
        inner.iterations.assign(iterations)
    for index, state in enumerate(seed_states(model)):
        name = f"{SEED_STATE_PREFIX}{index}"
        if name in available and tuple(available[name]) == tuple(state.shape):
            state.assign(reader.get_tensor(name))
    if hasattr(optimizer, "dynamic_scale") and all(n in available for n in LOSS_SCALE_NAMES):
        optimizer.dynamic_scale.assign(reader.get_tensor(LOSS_SCALE_NAMES[0]))
        optimizer.step_counter.assign(reader.get_tensor(LOSS_SCALE_NAMES[1]))
    return step


def initialize(prefix: str, model: Any, optional: tuple[str, ...] = ()) -> None:
    """Load only the weights of a checkpoint (fine-tuning from another model directory); the
    variables named with an ``optional`` prefix may be absent from it."""
    load_checkpoint(model, prefix, optional)
