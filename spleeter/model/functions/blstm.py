"""Upstream Spleeter's BLSTM: three bidirectional LSTMs over spectrogram frames, per instrument.

Each frame's ``F x C`` magnitudes are flattened, run through three stacked bidirectional LSTMs
(``lstm_units`` each way, default 250) and a ReLU dense layer back to ``F x C``: a direct
magnitude estimate (no mask). Upstream used ``CuDNNLSTM``, which only runs on a GPU; this is the
same network on a standard Keras LSTM, which runs anywhere (and still uses cuDNN on a GPU).
Upstream checkpoints load through :mod:`spleeter.model.checkpoint`, which folds CuDNN's split
bias into the standard one.
"""

from collections.abc import Iterable
from typing import Any

import keras

from . import LayerNames, apply

DEFAULT_UNITS = 250
_HE_UNIFORM_SEED = 50


def apply_blstm(
    input_tensor: Any,
    output_name: str = "output",
    params: dict | None = None,
    names: LayerNames | None = None,
) -> Any:
    """Build one instrument's BLSTM on ``input_tensor`` ``(batch, T, F, C)``."""
    params = params or {}
    names = names or LayerNames()
    units = int(params.get("lstm_units", DEFAULT_UNITS))
    initializer = keras.initializers.HeUniform(seed=_HE_UNIFORM_SEED)
    frequency_bins, channels = input_tensor.shape[2], input_tensor.shape[3]
    # Upstream wrapped Flatten, Dense and Reshape in TimeDistributed. Reshape and Dense act
    # per frame on their own, and Keras 3's TimeDistributed mishandles a dynamic time axis,
    # so the wrappers are dropped; the layers keep the wrappers' names (and variable paths).
    x = keras.layers.Reshape((-1, frequency_bins * channels), name=names("time_distributed"))(
        input_tensor
    )
    for _ in range(3):
        lstm = keras.layers.LSTM(
            units, return_sequences=True, kernel_initializer=initializer, name=names("cu_dnnlstm")
        )
        x = keras.layers.Bidirectional(lstm, name=names("bidirectional"))(x)
    x = keras.layers.Dense(
        frequency_bins * channels,
        activation="relu",
        kernel_initializer=initializer,
        name=names("time_distributed"),
    )(x)
    return keras.layers.Reshape((-1, frequency_bins, channels), name=output_name)(x)


def blstm(input_tensor: Any, instruments: Iterable[str], params: dict | None = None) -> dict:
    """One BLSTM per instrument (``blstm.blstm``)."""
    return apply(apply_blstm, input_tensor, instruments, params)
