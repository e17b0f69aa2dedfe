"""Optimizers for every training task: upstream's (Adam, Adadelta, SGD), AdamW and the
Zipformer's ScaledAdam, with optional linear warm-up, cosine or Eden decay and global-norm
gradient clipping.

Upstream's semantics are kept: ``Adadelta`` uses TF1's defaults (learning rate 0.001, rho 0.95,
epsilon 1e-8; ``learning_rate`` ignored), ``SGD`` is plain gradient descent, ``Adam`` uses TF1's
defaults (beta1 0.9, beta2 0.999, epsilon 1e-8), and a configuration that names no optimizer
gets Adam. Unlike upstream, an unknown name is an error rather than a silent Adam.
"""

import math
from dataclasses import dataclass
from typing import Any

from ..utils.logging import logger

OPTIMIZERS = ("Adam", "AdamW", "Adadelta", "SGD", "ScaledAdam")
"""Accepted ``optimizer`` values."""

LR_DECAYS = ("constant", "cosine", "eden")
"""Accepted ``lr_decay`` values: after the warm-up, keep the rate, cosine-decay it, or the
Zipformer's Eden decay ``((step^2 + S^2) / S^2)^-0.25`` (S = ``eden_steps``)."""


@dataclass(frozen=True)
class OptimizerSettings:
    """What a task asks of the loop's optimizer."""

    name: str = "Adam"
    learning_rate: float = 1e-4
    warmup_steps: int = 0
    decay: str = "constant"
    decay_steps: int = 0
    """Steps of the cosine decay after the warm-up (``train_max_steps`` minus the warm-up)."""
    min_learning_rate: float = 0.0
    eden_steps: int = 5000
    """Eden's step scale (icefall's ``lr_batches``): the rate halves by step ``sqrt(15) S``."""
    weight_decay: float = 0.01
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-8
    clip_norm: float | None = None
    """Clip the gradients' global norm to this (None: no clipping)."""


def optimizer_settings(params: dict[str, Any]) -> OptimizerSettings:
    """The optimizer of a separation configuration (keys checked by ``training_settings``)."""
    max_steps = int(params.get("train_max_steps") or 0)
    warmup = int(params.get("warmup_steps", 0))
    return OptimizerSettings(
        name=str(params.get("optimizer") or "Adam"),
        learning_rate=float(params.get("learning_rate") or 0.001),
        warmup_steps=warmup,
        decay=str(params.get("lr_decay", "constant")),
        decay_steps=max(max_steps - warmup, 1),
        min_learning_rate=float(params.get("min_learning_rate", 0.0)),
        eden_steps=int(params.get("eden_steps", 5000)),
        weight_decay=float(params.get("weight_decay", 0.01)),
        clip_norm=None if params.get("clip_norm") is None else float(params["clip_norm"]),
    )


def warn_of_ignored_keys(params: dict[str, Any]) -> None:
    """Say once, at the start of training, that a configured ``weight_decay`` goes unused
    (a recipe written for AdamW switched to another optimizer)."""
    name = str(params.get("optimizer") or "Adam")
    if params.get("weight_decay") is not None and name != "AdamW":
        logger.warning(f"weight_decay is used by AdamW only: {name} trains without it")


def warmup_schedule(settings: OptimizerSettings) -> Any:
    """The learning rate of ``settings``: a float when constant, else a Keras schedule."""
    import keras

    if settings.warmup_steps <= 0 and settings.decay == "constant":
        return settings.learning_rate

    class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
        """Linear warm-up to ``peak`` over ``warmup`` updates (the first update already at
        ``peak / warmup``), then constant, a cosine decay to ``floor``, or Eden's decay (its
        factor counts from step 0, as icefall's, so warm-up and decay overlap)."""

        def __init__(
            self, peak: float, warmup: int, decay: str, decay_steps: int, floor: float, eden: int
        ):
            self.peak, self.warmup, self.floor = float(peak), int(warmup), float(floor)
            self.decay, self.decay_steps, self.eden = str(decay), int(decay_steps), int(eden)

        def __call__(self, step: Any) -> Any:
            ops = keras.ops
            step = ops.cast(step, "float32")
            rate = self.peak * ops.minimum(1.0, (step + 1.0) / float(max(self.warmup, 1)))
            if self.decay == "eden":
                scale = float(self.eden) ** 2
                return rate * ops.power((ops.square(step) + scale) / scale, -0.25)
            if self.decay != "cosine":
                return rate
            progress = ops.clip((step - self.warmup) / float(self.decay_steps), 0.0, 1.0)
            cosine = self.floor + 0.5 * (self.peak - self.floor) * (1 + ops.cos(math.pi * progress))
            return ops.where(step < self.warmup, rate, cosine)

        def get_config(self) -> dict[str, Any]:
            return dict(vars(self))

    return WarmupDecay(
        settings.learning_rate,
        settings.warmup_steps,
        settings.decay,
        settings.decay_steps,
        settings.min_learning_rate,
        settings.eden_steps,
    )


def build_optimizer(settings: OptimizerSettings) -> Any:
    """The Keras optimizer of ``settings``."""
    import keras

    clip = {} if settings.clip_norm is None else {"global_clipnorm": settings.clip_norm}
    if settings.name == "Adadelta":
        return keras.optimizers.Adadelta(learning_rate=0.001, rho=0.95, epsilon=1e-8, **clip)
    rate = warmup_schedule(settings)
    if settings.name == "SGD":
        return keras.optimizers.SGD(learning_rate=rate, **clip)
    adam = {"beta_1": settings.beta_1, "beta_2": settings.beta_2, "epsilon": settings.epsilon}
    if settings.name == "AdamW":
        return keras.optimizers.AdamW(
            learning_rate=rate, weight_decay=settings.weight_decay, **adam, **clip
        )
    if settings.name == "Adam":
        return keras.optimizers.Adam(learning_rate=rate, **adam, **clip)
    if settings.name == "ScaledAdam":  # its own betas (0.9, 0.98), icefall's
        from .scaled_adam import ScaledAdam

        return ScaledAdam(learning_rate=rate, **clip)
    raise ValueError(
        f"Unknown optimizer {settings.name!r} (expected one of {', '.join(OPTIMIZERS)})"
    )
