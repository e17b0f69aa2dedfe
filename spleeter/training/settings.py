"""Training settings read from a configuration (upstream's keys) and the command line.

Upstream read these keys without defaults (a missing one ended in a ``KeyError``); here the
ones a training run cannot do without are reported together, and the others have defaults:
``save_checkpoints_steps`` 1000, ``save_summary_steps`` 100, ``throttle_secs`` 600,
``random_seed`` 0, ``batch_size`` 8. The signal settings are checked against the schema
shared with separation (:mod:`spleeter.utils.schema`); the training keys here.
"""

from dataclasses import dataclass
from typing import Any

from .. import SpleeterError
from ..model.registry import architecture, architecture_problems, model_type
from ..utils.configuration import SIGNAL_KEYS
from ..utils.schema import schema_problems
from ..utils.values import is_int
from .optimizers import LR_DECAYS, OPTIMIZERS
from .precision import mixed_precision_choice

REQUIRED_KEYS = ("train_csv", "model_dir", *SIGNAL_KEYS)
"""Configuration keys without which there is nothing to train."""

DEFAULTS: dict[str, Any] = {
    "save_checkpoints_steps": 1000,
    "save_summary_steps": 100,
    "throttle_secs": 600,
    "random_seed": 0,
    "batch_size": 8,
}
"""Values used for the optional training keys a configuration leaves out."""

LOSS_TYPES = ("L1_mask", "weighted_L1_mask")
"""Accepted ``loss_type`` values (default ``L1_mask``)."""


class TrainingConfigurationError(SpleeterError, ValueError):
    """The configuration cannot be trained; the message names the keys."""


@dataclass(frozen=True)
class TrainingSettings:
    """Everything the training loop needs besides the model and the data."""

    model_dir: str
    max_steps: int
    save_checkpoints_steps: int
    save_summary_steps: int
    throttle_secs: float
    random_seed: int
    batch_size: int
    mixed_precision: str | None = None
    """None (float32), ``auto`` or a compute dtype (see :mod:`.precision`)."""
    init_from: str | None = None


def training_settings(
    params: dict[str, Any],
    *,
    max_steps: int | None = None,
    seed: int | None = None,
    mixed_precision: bool | str | None = None,
    init_from: str | None = None,
) -> tuple[TrainingSettings, dict[str, Any]]:
    """Validate ``params`` for training; return the settings and the configuration to train.

    ``max_steps`` overrides ``train_max_steps``; ``seed`` overrides ``random_seed`` (the
    returned configuration carries both, so the dataset uses the same seed).

    Raises:
        TrainingConfigurationError: keys are missing or have unusable values (all listed).
    """
    params = dict(params)
    if max_steps is not None:
        params["train_max_steps"] = max_steps
    if seed is not None:
        params["random_seed"] = seed
    for key, value in DEFAULTS.items():
        if params.get(key) is None:
            params[key] = value
    missing = [key for key in REQUIRED_KEYS if params.get(key) is None]
    if params.get("train_max_steps") is None:
        missing.append("train_max_steps (or --max-steps)")
    if params.get("optimizer") != "Adadelta" and params.get("learning_rate") is None:
        missing.append("learning_rate")
    if missing:
        raise TrainingConfigurationError(
            f"The configuration lacks {', '.join(missing)} (needed to train)"
        )
    problems = _value_problems(params)
    if problems:
        raise TrainingConfigurationError("Cannot train this configuration: " + "; ".join(problems))
    settings = TrainingSettings(
        model_dir=str(params["model_dir"]),
        max_steps=int(params["train_max_steps"]),
        save_checkpoints_steps=int(params["save_checkpoints_steps"]),
        save_summary_steps=int(params["save_summary_steps"]),
        throttle_secs=float(params["throttle_secs"]),
        random_seed=int(params["random_seed"]),
        batch_size=int(params["batch_size"]),
        mixed_precision=mixed_precision_choice(mixed_precision),
        init_from=init_from,
    )
    return settings, params


def _value_problems(params: dict[str, Any]) -> list[str]:
    problems = schema_problems(params, "train", missing=False)  # the signal settings
    for key in ("batch_size", "save_checkpoints_steps", "save_summary_steps"):
        if not is_int(params[key]) or int(params[key]) <= 0:
            problems.append(f"{key} must be a positive integer (got {params[key]!r})")
    if not is_int(params["train_max_steps"]) or int(params["train_max_steps"]) < 0:
        problems.append(
            f"train_max_steps must be an integer >= 0 (got {params['train_max_steps']!r})"
        )
    if not is_int(params["random_seed"]):
        problems.append(f"random_seed must be an integer (got {params['random_seed']!r})")
    problems += _optimizer_problems(params)
    loss_type = params.get("loss_type", LOSS_TYPES[0])
    if loss_type not in LOSS_TYPES:
        problems.append(
            f"unknown loss_type {loss_type!r} (expected one of {', '.join(LOSS_TYPES)})"
        )
    if not problems:
        problems += architecture_problems(params)
        if not problems and architecture(params).task != "separation":
            problems.append(f"{model_type(params)} is not trained by spleeter train")
    return problems


def _optimizer_problems(params: dict[str, Any]) -> list[str]:
    """Checks of ``optimizer`` (an unknown name is an error, not upstream's silent Adam) and of
    the optional schedule keys."""
    problems = []
    name = params.get("optimizer")
    if name is not None and name not in OPTIMIZERS:
        problems.append(f"unknown optimizer {name!r} (expected one of {', '.join(OPTIMIZERS)})")
    decay = params.get("lr_decay", "constant")
    if decay not in LR_DECAYS:
        problems.append(f"unknown lr_decay {decay!r} (expected one of {', '.join(LR_DECAYS)})")
    for key, minimum in (("learning_rate", 0), ("min_learning_rate", 0)):
        value = params.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or value < minimum
        ):
            problems.append(f"{key} must be a number >= {minimum} (got {value!r})")
    for key in ("weight_decay", "clip_norm"):
        value = params.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or value <= 0
        ):
            problems.append(f"{key} must be a positive number (got {value!r})")
    for key, minimum in (("warmup_steps", 0), ("eden_steps", 1)):
        value = params.get(key)
        if value is not None and (not is_int(value) or value < minimum):
            problems.append(f"{key} must be an integer >= {minimum} (got {value!r})")
    return problems
