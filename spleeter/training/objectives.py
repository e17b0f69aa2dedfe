"""Losses of upstream's separation configurations, for Keras 3.

``loss_type``: ``L1_mask`` (default), the mean absolute difference between each estimated
magnitude and its target, summed over instruments; ``weighted_L1_mask``, the same difference
weighted by the mean magnitude of each target example (upstream's formula, which its TF2 code
could not run: it used the removed ``keep_dims`` keyword). Architectures may add weighted
losses of training-only outputs (the transformer's presence loss). An architecture whose
objective (:data:`OBJECTIVES`) is ``deep_clustering`` is trained by the affinity loss of its
per-bin embeddings instead (:func:`deep_clustering_loss`).

Optimizers are in :mod:`.optimizers` (shared by every training task).
"""

from collections.abc import Callable
from typing import Any

import keras

from ..audio.spectrogram import SILENCE_DB

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

PRESENCE_THRESHOLD_DB = -30.0
"""A stem is present in a chunk when its energy is at least this far below the mixture's."""


def presence_targets(target: Any, mixture: Any) -> Any:
    """``(batch,)`` 1.0 where the stem's magnitude ``target`` holds at least
    :data:`PRESENCE_THRESHOLD_DB` of the ``mixture``'s energy in the chunk, else 0.0 (a silent
    mixture has no stem present)."""
    axes = list(range(1, len(target.shape)))
    stem = keras.ops.mean(keras.ops.square(keras.ops.cast(target, "float32")), axis=axes)
    mix = keras.ops.mean(keras.ops.square(keras.ops.cast(mixture, "float32")), axis=axes)
    ratio = 10.0 ** (PRESENCE_THRESHOLD_DB / 10.0)
    return keras.ops.cast(keras.ops.logical_and(stem >= ratio * mix, mix > 0), "float32")


def presence_loss(logits: Any, target: Any, mixture: Any) -> Any:
    """Binary cross-entropy of a stem's presence logits ``(batch,)`` against
    :func:`presence_targets` (the transformer's class tokens learn which stem is there)."""
    labels = presence_targets(target, mixture)
    logits = keras.ops.cast(logits, "float32")
    return keras.ops.mean(keras.ops.binary_crossentropy(labels, logits, from_logits=True))


AuxiliaryLoss = Callable[[Any, Any, Any], Any]
"""``(output, instrument target magnitude, mixture magnitude) -> scalar``."""

AUXILIARY_LOSSES: dict[str, AuxiliaryLoss] = {"presence": presence_loss}
"""Losses of training-only outputs ``<instrument>_<kind>``, by kind (see
:attr:`spleeter.model.Architecture.auxiliary_losses`)."""


def dominance_labels(targets: list[Any], mixture: Any) -> tuple[Any, Any]:
    """One-hot labels ``(batch, T x F, S)`` of the stem with the most energy in each bin (over
    the channels), and the bin weights ``(batch, T x F, 1)``: 1 where the mixture is within
    :data:`SILENCE_DB` of the chunk's loudest bin, else 0."""
    power = keras.ops.stack(
        [keras.ops.sum(keras.ops.square(keras.ops.cast(t, "float32")), axis=-1) for t in targets],
        axis=-1,
    )
    batch = keras.ops.shape(power)[0]
    labels = keras.ops.one_hot(keras.ops.argmax(power, axis=-1), len(targets))
    mix = keras.ops.sum(keras.ops.square(keras.ops.cast(mixture, "float32")), axis=-1)
    loudest = keras.ops.max(mix, axis=[1, 2], keepdims=True)
    weights = keras.ops.cast(mix > loudest * 10.0 ** (SILENCE_DB / 10.0), "float32")
    return (
        keras.ops.reshape(labels, (batch, -1, len(targets))),
        keras.ops.reshape(weights, (batch, -1, 1)),
    )


def deep_clustering_loss(embedding: Any, targets: list[Any], mixture: Any) -> Any:
    """``|V V^T - Y Y^T|_F^2`` per chunk, over its weighted bins, divided by the squared number
    of those bins, averaged over the batch: computed as ``|V^T V|^2 - 2 |V^T Y|^2 + |Y^T Y|^2``
    so that no bins x bins matrix is formed. ``embedding`` ``(batch, T, F, D)`` unit vectors,
    ``targets`` each stem's magnitude ``(batch, T, F, C)``, ``mixture`` the same shape."""
    labels, weights = dominance_labels(targets, mixture)
    batch = keras.ops.shape(embedding)[0]
    v = keras.ops.reshape(keras.ops.cast(embedding, "float32"), (batch, -1, embedding.shape[-1]))
    v, y = v * weights, labels * weights

    def gram(a: Any, b: Any) -> Any:
        return keras.ops.sum(
            keras.ops.square(keras.ops.matmul(keras.ops.transpose(a, (0, 2, 1)), b)), axis=[1, 2]
        )

    count = keras.ops.maximum(keras.ops.sum(weights, axis=[1, 2]), 1.0)
    return keras.ops.mean((gram(v, v) - 2.0 * gram(v, y) + gram(y, y)) / keras.ops.square(count))


Objective = Callable[[dict[str, Any], dict[str, Any], Any, LossFunction], dict[str, Any]]
"""``(outputs, labels, mixture, per-instrument loss) -> {name: loss}``."""


def magnitude_objective(
    outputs: dict[str, Any], labels: dict[str, Any], mixture: Any, loss: LossFunction
) -> dict[str, Any]:
    return instrument_losses(outputs, labels, loss)


def deep_clustering_objective(
    outputs: dict[str, Any], labels: dict[str, Any], mixture: Any, loss: LossFunction
) -> dict[str, Any]:
    targets = [labels[name] for name in sorted(labels)]
    return {"deep_clustering": deep_clustering_loss(outputs["embedding"], targets, mixture)}


OBJECTIVES: dict[str, Objective] = {
    "magnitudes": magnitude_objective,
    "deep_clustering": deep_clustering_objective,
}
"""What an architecture's training minimises, by its registry ``objective``."""


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
    """``{"<instrument>_spectrogram": loss}`` in float32 (outputs may be float16), for the
    outputs that have labels."""
    return {
        name: loss(keras.ops.cast(output, "float32"), keras.ops.cast(labels[name], "float32"))
        for name, output in outputs.items()
        if name in labels
    }


def auxiliary_losses(
    outputs: dict[str, Any], labels: dict[str, Any], mixture: Any, weights: dict[str, float]
) -> dict[str, Any]:
    """``{"<instrument>_<kind>": weight x loss}`` of the training-only outputs, for each
    ``kind`` of ``weights``."""
    losses = {}
    for kind, weight in weights.items():
        objective = AUXILIARY_LOSSES[kind]
        for name in labels:
            instrument = name.removesuffix("_spectrogram")
            output = outputs[f"{instrument}_{kind}"]
            losses[f"{instrument}_{kind}"] = weight * objective(output, labels[name], mixture)
    return losses
