"""Losses of upstream's separation configurations, for Keras 3.

``loss_type``: ``L1_mask`` (default), the mean absolute difference between each estimated
magnitude and its target, summed over instruments; ``weighted_L1_mask``, the same difference
weighted by the mean magnitude of each target example (upstream's formula, which its TF2 code
could not run: it used the removed ``keep_dims`` keyword).

Optimizers are in :mod:`.optimizers` (shared by every training task).
"""

from collections.abc import Callable
from typing import Any

import keras

LossFunction = Callable[[Any, Any], Any]
"""``(estimate, target) -> scalar`` for one instrument."""


def l1_mask(estimate: Any, target: Any) -> Any:
    """Mean absolute difference. With ``n_channels`` 1 the U-Net's 2-channel output is
    compared with the 1-channel target by broadcasting, as upstream did."""
    return keras.ops.mean(keras.ops.abs(estimate - target))


def weighted_l1_mask(estimate: Any, target: Any) -> Any:
    """Absolute difference weighted by each example's mean target magnitude, averaged."""
    weight = keras.ops.mean(target, axis=[1, 2, 3], keepdims=True)
    return keras.ops.mean(weight * keras.ops.abs(estimate - target))


LOSSES: dict[str, LossFunction] = {"L1_mask": l1_mask, "weighted_L1_mask": weighted_l1_mask}
"""Loss of each ``loss_type``."""


def loss_function(params: dict[str, Any]) -> LossFunction:
    """The per-instrument loss of a configuration.

    Raises:
        ValueError: unknown ``loss_type`` (upstream's error).
    """
    loss_type = params.get("loss_type", "L1_mask")
    if loss_type not in LOSSES:
        raise ValueError(f"Unkwnown loss type: {loss_type}")
    return LOSSES[loss_type]


def instrument_losses(
    outputs: dict[str, Any], labels: dict[str, Any], loss: LossFunction
) -> dict[str, Any]:
    """``{"<instrument>_spectrogram": loss}`` in float32 (outputs may be float16)."""
    return {
        name: loss(keras.ops.cast(output, "float32"), keras.ops.cast(labels[name], "float32"))
        for name, output in outputs.items()
    }
