"""Spleeter models: the registry of architectures, the Keras model builder, checkpoints.

Importing this package is cheap; TensorFlow/Keras load only when a model is built.
"""

from collections.abc import Callable
from typing import Any

from .registry import (  # noqa: F401 (the registry's names, importable from here as before)
    ARCHITECTURES,
    DEFAULT_MODEL,
    Architecture,
    ModelNotFoundError,
    architecture,
    architecture_problems,
    model_params,
    model_type,
)


def get_model_function(model_type: str) -> Callable[..., dict]:
    """The builder registered as ``model_type`` (``"<module>.<function>"``, upstream's names:
    ``unet.unet``, ``unet.softmax_unet``, ``blstm.blstm``; and ours, see :mod:`.registry`)."""
    return architecture(model_type).build_function()


def build_model(params: dict[str, Any], auxiliary: bool = False) -> Any:
    """The Keras model of a configuration: mixture magnitude in, one estimate per instrument out.

    Input ``"<mix_name>_spectrogram"`` of shape ``(batch, T, F, n_channels)`` (batch and ``T``
    dynamic); outputs ``{"<instrument>_spectrogram": (batch, T, F, n_channels)}``, and with
    ``auxiliary`` (training) the architecture's training-only outputs too
    (:attr:`Architecture.auxiliary_losses`).
    """
    import keras

    builder = get_model_function(model_type(params))
    spectrogram = keras.Input(
        shape=(None, params["F"], params["n_channels"]),
        name=f"{params['mix_name']}_spectrogram",
        dtype="float32",
    )
    outputs = builder(spectrogram, params["instrument_list"], model_params(params))
    if not auxiliary:
        kinds = architecture(model_type(params)).auxiliary_losses(params)
        extra = {f"{name}_{kind}" for kind in kinds for name in params["instrument_list"]}
        outputs = {name: tensor for name, tensor in outputs.items() if name not in extra}
    return keras.Model(inputs=spectrogram, outputs=outputs, name=model_type(params))


def initialize_pretrained(model: Any) -> list[str]:
    """Let the layers of ``model`` that bring their own pretrained weights load them.

    A layer takes part by having a ``load_pretrained()`` method returning a description of
    what it loaded, or None (the fused separator's SSL encoder loads its ``encoder_dir``).
    Called by ``spleeter train`` on a fresh run, before ``--init-from``. Returns the
    descriptions.
    """
    loaded = []
    for layer in model._flatten_layers(include_self=False, recursive=True):
        load = getattr(layer, "load_pretrained", None)
        if callable(load):
            description = load()
            if description:
                loaded.append(str(description))
    return loaded
