"""Upstream Spleeter's U-Net: one convolutional U-Net per instrument, estimating a soft mask.

Six 5x5 stride-2 convolutions encode the mixture magnitude; six 5x5 stride-2 transposed
convolutions decode it, each concatenated with the matching raw encoder output (skip first).
A 4x4 dilated convolution gives a 2-channel sigmoid mask that multiplies the input
(``unet``), or logits that a softmax across instruments turns into masks (``softmax_unet``).
Layer order, names, activations and paddings reproduce upstream's graph exactly, so that its
checkpoints load by variable name and give the same numbers.
"""

from collections.abc import Callable, Iterable
from typing import Any

import keras

from . import LayerNames, apply

DEFAULT_FILTERS = (16, 32, 64, 128, 256, 512)
DROPOUT_RATE = 0.5
_HE_UNIFORM_SEED = 50


def conv_filters(params: dict) -> list[int]:
    """Filters of each encoder level (``conv_n_filters``, upstream's six levels by default)."""
    return list(params.get("conv_n_filters", DEFAULT_FILTERS))


def time_reduction(params: dict) -> int:
    """How many input frames (and bins) one bottleneck step covers: ``2 ** levels``. ``T`` and
    ``F`` must be multiples of it (the registry declares it)."""
    return 2 ** len(conv_filters(params))


def _conv_activation(params: dict) -> keras.layers.Layer:
    """Encoder activation: ``ReLU``, ``ELU``, anything else LeakyReLU(0.2) (upstream's rule)."""
    name = str(params.get("conv_activation"))
    if name == "ReLU":
        return keras.layers.ReLU()
    if name == "ELU":
        return keras.layers.ELU()
    return keras.layers.LeakyReLU(negative_slope=0.2)


def _deconv_activation(params: dict) -> keras.layers.Layer:
    """Decoder activation: ``LeakyReLU`` (0.2), ``ELU``, anything else ReLU (upstream's rule)."""
    name = str(params.get("deconv_activation"))
    if name == "LeakyReLU":
        return keras.layers.LeakyReLU(negative_slope=0.2)
    if name == "ELU":
        return keras.layers.ELU()
    return keras.layers.ReLU()


def _batch_norm(names: LayerNames) -> keras.layers.Layer:
    return keras.layers.BatchNormalization(
        axis=-1, epsilon=1e-3, momentum=0.99, name=names("batch_normalization")
    )


def apply_unet(
    input_tensor: Any,
    output_name: str = "output",
    params: dict | None = None,
    output_mask_logit: bool = False,
    names: LayerNames | None = None,
    extra_inputs: Any = None,
    bottleneck: Callable[[Any], Any] | None = None,
    first_level: Callable[[Any], Any] | None = None,
    output_channels: int = 2,
    last_decoder_filters: int = 1,
) -> Any:
    """Build one instrument's U-Net on ``input_tensor`` ``(batch, T, F, C)``.

    Returns the estimated magnitude (mask x input, named ``output_name``), or the mask logits
    when ``output_mask_logit`` is set. ``T`` and ``F`` must be multiples of
    :func:`time_reduction`.

    Conditioning (used by ``ssl_unet``; upstream's U-Net has neither): ``extra_inputs``
    ``(batch, T, F, k)`` are concatenated to the input channels of the first convolution (the
    mask still multiplies ``input_tensor``); ``bottleneck`` maps the deepest convolution's
    output to what the decoder starts from; ``first_level`` maps the first convolution's
    output (before its batch norm and skip connection) to what the encoder continues from.

    Embedding heads (``dc.unet_embedding``): ``output_channels`` logits per bin from a last
    decoder level of ``last_decoder_filters`` channels (upstream: 2 logits from 1 channel).
    """
    params = params or {}
    names = names or LayerNames()
    filters = conv_filters(params)
    conv_activation = _conv_activation(params)
    deconv_activation = _deconv_activation(params)
    initializer = keras.initializers.HeUniform(seed=_HE_UNIFORM_SEED)

    def conv(n_filters: int) -> keras.layers.Layer:
        return keras.layers.Conv2D(
            n_filters,
            (5, 5),
            strides=(2, 2),
            padding="same",
            kernel_initializer=initializer,
            name=names("conv2d"),
        )

    def deconv(n_filters: int) -> keras.layers.Layer:
        return keras.layers.Conv2DTranspose(
            n_filters,
            (5, 5),
            strides=(2, 2),
            padding="same",
            kernel_initializer=initializer,
            name=names("conv2d_transpose"),
        )

    # Encoder: the skip connections carry the raw convolution outputs.
    skips = []
    x = input_tensor
    if extra_inputs is not None:
        x = keras.layers.Concatenate(axis=-1)([input_tensor, extra_inputs])
    for level, n_filters in enumerate(filters):
        convolved = conv(n_filters)(x)
        if level == 0 and first_level is not None:
            convolved = first_level(convolved)
        normalised = _batch_norm(names)(convolved)
        if level < len(filters) - 1:
            skips.append(convolved)
            x = conv_activation(normalised)
    # The deepest level's batch norm and activation are dead ends in upstream's graph: the
    # decoder starts from the raw convolution. Its variables exist in checkpoints, unused.
    x = convolved if bottleneck is None else bottleneck(convolved)
    # Decoder: transposed conv -> activation -> batch norm (-> dropout on the first three).
    decoder_filters = list(reversed(filters[:-1])) + [last_decoder_filters]
    for level, n_filters in enumerate(decoder_filters):
        x = deconv(n_filters)(x)
        x = deconv_activation(x)
        x = _batch_norm(names)(x)
        if level < 3:
            x = keras.layers.Dropout(DROPOUT_RATE)(x)
        if skips:
            x = keras.layers.Concatenate(axis=-1)([skips.pop(), x])
    logits_or_mask = keras.layers.Conv2D(
        output_channels,
        (4, 4),
        dilation_rate=(2, 2),
        padding="same",
        activation=None if output_mask_logit else "sigmoid",
        kernel_initializer=initializer,
        name=names("conv2d"),
    )(x)
    if output_mask_logit:
        return logits_or_mask
    return keras.layers.Multiply(name=output_name)([logits_or_mask, input_tensor])


def unet(input_tensor: Any, instruments: Iterable[str], params: dict | None = None) -> dict:
    """One sigmoid-mask U-Net per instrument (``unet.unet``)."""
    return apply(apply_unet, input_tensor, instruments, params)


def softmax_unet(input_tensor: Any, instruments: Iterable[str], params: dict | None = None) -> dict:
    """One U-Net per instrument whose logits are normalised by a softmax across instruments
    (``unet.softmax_unet``, upstream's 5-stem model): the masks sum to one."""
    instruments = list(instruments)
    names = LayerNames()
    logits = [
        apply_unet(input_tensor, f"{name}_spectrogram", params, output_mask_logit=True, names=names)
        for name in instruments
    ]
    masks = keras.layers.Softmax(axis=4)(keras.ops.stack(logits, axis=4))
    return {
        f"{name}_spectrogram": keras.layers.Multiply(name=f"{name}_spectrogram")(
            [masks[..., index], input_tensor]
        )
        for index, name in enumerate(instruments)
    }
