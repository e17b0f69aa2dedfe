"""A deep-clustering embedding network: one unit-norm embedding per time-frequency bin.

The time-frequency variant of the cluster family (Hershey et al. 2016, "Deep clustering"):
where the autoencoder clusters whole latent frames, and so can only split a song in time, this
network gives every bin ``(t, f)`` of the mixture an embedding ``v`` of ``embedding_dimension``
values, trained (``spleeter train``, on stems) so that bins dominated by the same stem point the
same way. Separation clusters the bins (:mod:`spleeter.separation.embedding`).

The body is upstream's U-Net (its encoder, decoder and skip connections, ``conv_n_filters``),
run once on the log-compressed mixture magnitude ``log(1 + |X|)`` (the dynamic range the
original's log spectra had); its last decoder level has ``embedding_features`` channels and the
head ``embedding_dimension`` logits per bin, shared by the channels, normalised to unit length.
"""

from collections.abc import Iterable
from typing import Any

import keras

from ...utils.values import is_int
from .unet import apply_unet

DEFAULT_DIMENSION = 20
"""Hershey et al.'s embedding size."""
DEFAULT_FEATURES = 16
OUTPUT = "embedding"
"""The network's one output, ``(batch, T, F, embedding_dimension)``."""


def embedding_dimension(params: dict[str, Any]) -> int:
    return int(params.get("embedding_dimension", DEFAULT_DIMENSION))


def problems(params: dict[str, Any]) -> list[str]:
    """What is wrong with a configuration's ``model.params`` for this network."""
    model = dict((params.get("model") or {}).get("params") or {})
    found = []
    for key in ("embedding_dimension", "embedding_features"):
        value = model.get(key)
        if value is not None and not (is_int(value) and int(value) >= 2):
            found.append(f"model.params.{key} must be an integer >= 2 (got {value!r})")
    return found


def _log_magnitude(magnitude: Any) -> Any:
    return keras.ops.log(magnitude + 1.0)


def unet_embedding(
    input_tensor: Any, instruments: Iterable[str], params: dict | None = None
) -> dict[str, Any]:
    """``{"embedding": (batch, T, F, D)}`` unit-norm embeddings of the mixture's bins
    (``dc.unet_embedding``; ``instruments`` are the stems it is trained to tell apart)."""
    params = params or {}
    del instruments  # the embedding space is the same whatever the stems are called
    # log(1 + x) spelled out: tf2onnx has no Log1p
    compressed = keras.layers.Lambda(_log_magnitude, name="log_magnitude")(input_tensor)
    logits = apply_unet(
        compressed,
        params=params,
        output_mask_logit=True,
        output_channels=embedding_dimension(params),
        last_decoder_filters=int(params.get("embedding_features", DEFAULT_FEATURES)),
    )
    # float32 whatever the compute type: the sum of squares overflows float16 past a norm of 256
    normalise = keras.layers.UnitNormalization(axis=-1, name=OUTPUT, dtype="float32")
    return {OUTPUT: normalise(logits)}


__all__ = ["OUTPUT", "embedding_dimension", "problems", "unet_embedding"]
