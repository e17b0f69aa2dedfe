"""A SEANet-style convolutional autoencoder with a KL-regularised Gaussian latent.

The design of EnCodec's ``SEANetEncoder`` / ``SEANetDecoder`` (``encodec/modules/seanet.py``),
as the seed project used it (channels 2, ``dimension`` 512, ``n_filters`` 48, ratios
``[4, 4, 4, 2]``: one latent frame every 128 samples, tanh output):

- **encoder**: conv k7 -> for each ratio (reversed): ``residual_layers`` residual blocks
  (ELU, conv k3 dilated ``2 ** j``, ELU, conv k1, identity shortcut) -> ELU -> strided conv
  (kernel ``2 r``, stride ``r``), channels doubling -> ``lstm_layers`` LSTM layers (with a skip)
  -> ELU -> conv k7 to ``2 * dimension``: the latent's mean and log-variance;
- **decoder**: the mirror, transposed convolutions, tanh output.

Differences from EnCodec, stated: zero ("same") padding instead of reflect padding, no weight
normalisation, the latent is Gaussian (mean, log-variance; no quantiser). Input and output are
time-domain ``(batch, samples, channels)`` (channels last), ``samples`` a multiple of
:func:`hop`.

:func:`build_autoencoder` is the registry's builder for ``seanet.autoencoder``: the training
model ``[audio, noise] -> [reconstruction, mean, log_variance]`` (``noise`` is the
reparameterisation's standard normal draw, handed in with the batch so that a resumed run is
exact; zeros give the mean's decoding). Its sub-models ``seanet_encoder`` and
``seanet_decoder`` (``model.get_layer``) are what separation and the ONNX export use.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np

DEFAULTS: dict[str, Any] = {
    "n_filters": 48,
    "dimension": 512,
    "ratios": [4, 4, 4, 2],
    "residual_layers": 1,
    "lstm_layers": 2,
    "kernel_size": 7,
}
"""The seed's SEANet settings (``model.params`` keys)."""

LOG_VARIANCE_RANGE = (-12.0, 8.0)
"""The encoder's log-variance is clipped to this range (a stable KL term)."""


@dataclass(frozen=True)
class SEANetSettings:
    """``model.params`` of ``seanet.autoencoder``."""

    n_filters: int
    dimension: int
    ratios: tuple[int, ...]
    residual_layers: int
    lstm_layers: int
    kernel_size: int
    channels: int

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "SEANetSettings":
        """From a whole configuration (``n_channels`` and ``model.params``)."""
        model = {**DEFAULTS, **dict((params.get("model") or {}).get("params") or {})}
        return cls(
            n_filters=int(model["n_filters"]),
            dimension=int(model["dimension"]),
            ratios=tuple(int(r) for r in model["ratios"]),
            residual_layers=int(model["residual_layers"]),
            lstm_layers=int(model["lstm_layers"]),
            kernel_size=int(model["kernel_size"]),
            channels=int(params.get("n_channels", 2)),
        )

    @property
    def hop(self) -> int:
        """Samples per latent frame (the product of the ratios)."""
        return int(np.prod(self.ratios)) if self.ratios else 1


def hop(params: dict[str, Any]) -> int:
    """Samples per latent frame of a configuration's autoencoder."""
    return SEANetSettings.from_params(params).hop


def problems(params: dict[str, Any]) -> list[str]:
    """What is wrong with ``model.params`` for ``seanet.autoencoder`` (empty: usable)."""
    model = dict((params.get("model") or {}).get("params") or {})
    found = []
    for key in ("n_filters", "dimension", "kernel_size"):
        value = model.get(key, DEFAULTS[key])
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            found.append(f"model.params.{key} must be a positive integer (got {value!r})")
    for key in ("residual_layers", "lstm_layers"):
        value = model.get(key, DEFAULTS[key])
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            found.append(f"model.params.{key} must be an integer >= 0 (got {value!r})")
    ratios = model.get("ratios", DEFAULTS["ratios"])
    if (
        not isinstance(ratios, list)
        or not ratios
        or not all(isinstance(r, int) and not isinstance(r, bool) and r >= 1 for r in ratios)
    ):
        found.append(f"model.params.ratios must be a list of positive integers (got {ratios!r})")
    return found


def _residual(x: Any, channels: int, dilation: int, name: str) -> Any:
    import keras

    y = keras.layers.ELU(name=f"{name}_elu_a")(x)
    y = keras.layers.Conv1D(
        max(1, channels // 2), 3, dilation_rate=dilation, padding="same", name=f"{name}_conv_a"
    )(y)
    y = keras.layers.ELU(name=f"{name}_elu_b")(y)
    y = keras.layers.Conv1D(channels, 1, name=f"{name}_conv_b")(y)
    return keras.layers.Add(name=f"{name}_add")([x, y])


def _lstm(x: Any, layers: int, name: str) -> Any:
    import keras

    if not layers:
        return x
    y = x
    for k in range(layers):
        y = keras.layers.LSTM(x.shape[-1], return_sequences=True, name=f"{name}_lstm_{k}")(y)
    return keras.layers.Add(name=f"{name}_lstm_skip")([x, y])


def build_encoder(settings: SEANetSettings) -> Any:
    """``audio (batch, samples, channels) -> [mean, log_variance]``, each
    ``(batch, samples / hop, dimension)``."""
    import keras

    name = "seanet_encoder"
    audio = keras.Input((None, settings.channels), name="audio", dtype="float32")
    h = keras.layers.Conv1D(
        settings.n_filters, settings.kernel_size, padding="same", name=f"{name}_conv_in"
    )(audio)
    mult = 1
    for level, ratio in enumerate(reversed(settings.ratios)):
        for j in range(settings.residual_layers):
            h = _residual(h, mult * settings.n_filters, 2**j, f"{name}_block{level}_res{j}")
        h = keras.layers.ELU(name=f"{name}_block{level}_elu")(h)
        h = keras.layers.Conv1D(
            mult * settings.n_filters * 2,
            2 * ratio,
            strides=ratio,
            padding="same",
            name=f"{name}_block{level}_down",
        )(h)
        mult *= 2
    h = _lstm(h, settings.lstm_layers, name)
    h = keras.layers.ELU(name=f"{name}_elu_out")(h)
    mean = keras.layers.Conv1D(
        settings.dimension, settings.kernel_size, padding="same", name=f"{name}_mean"
    )(h)
    log_variance = keras.layers.Conv1D(
        settings.dimension, settings.kernel_size, padding="same", name=f"{name}_log_variance"
    )(h)
    log_variance = keras.layers.Lambda(
        lambda v: keras.ops.clip(v, *LOG_VARIANCE_RANGE), name=f"{name}_clip"
    )(log_variance)
    return keras.Model(audio, [mean, log_variance], name=name)


def build_decoder(settings: SEANetSettings) -> Any:
    """``latent (batch, frames, dimension) -> audio (batch, frames * hop, channels)`` in
    ``[-1, 1]`` (tanh)."""
    import keras

    name = "seanet_decoder"
    latent = keras.Input((None, settings.dimension), name="latent", dtype="float32")
    mult = 2 ** len(settings.ratios)
    h = keras.layers.Conv1D(
        mult * settings.n_filters, settings.kernel_size, padding="same", name=f"{name}_conv_in"
    )(latent)
    h = _lstm(h, settings.lstm_layers, name)
    for level, ratio in enumerate(settings.ratios):
        h = keras.layers.ELU(name=f"{name}_block{level}_elu")(h)
        h = keras.layers.Conv1DTranspose(
            mult * settings.n_filters // 2,
            2 * ratio,
            strides=ratio,
            padding="same",
            name=f"{name}_block{level}_up",
        )(h)
        for j in range(settings.residual_layers):
            h = _residual(h, mult * settings.n_filters // 2, 2**j, f"{name}_block{level}_res{j}")
        mult //= 2
    h = keras.layers.ELU(name=f"{name}_elu_out")(h)
    h = keras.layers.Conv1D(
        settings.channels, settings.kernel_size, padding="same", name=f"{name}_conv_out"
    )(h)
    audio = keras.layers.Activation("tanh", name=f"{name}_tanh")(h)
    return keras.Model(latent, audio, name=name)


def build_autoencoder(params: dict[str, Any]) -> Any:
    """The training model of a configuration: ``[audio, noise] -> [reconstruction, mean,
    log_variance]`` with ``z = mean + exp(log_variance / 2) * noise``."""
    import keras

    settings = SEANetSettings.from_params(params)
    encoder = build_encoder(settings)
    decoder = build_decoder(settings)
    audio = keras.Input((None, settings.channels), name="audio", dtype="float32")
    noise = keras.Input((None, settings.dimension), name="noise", dtype="float32")
    mean, log_variance = encoder(audio)
    latent = keras.layers.Lambda(
        lambda t: t[0] + keras.ops.exp(0.5 * t[1]) * t[2], name="reparameterise"
    )([mean, log_variance, noise])
    reconstruction = decoder(latent)
    return keras.Model(
        [audio, noise], [reconstruction, mean, log_variance], name="seanet_autoencoder"
    )
