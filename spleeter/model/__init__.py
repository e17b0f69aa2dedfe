"""Spleeter models: architectures by name, the Keras model builder and upstream checkpoints.

Importing this package is cheap; TensorFlow/Keras load only when a model is built.
"""

import importlib
from collections.abc import Callable
from typing import Any

from .. import SpleeterError

DEFAULT_MODEL = "unet.unet"
"""``model.type`` used when a configuration names none (upstream's default)."""


class ModelNotFoundError(SpleeterError, ValueError):
    """``model.type`` names no builder (a ``ValueError`` too, as upstream raised)."""


def model_type(params: dict[str, Any]) -> str:
    """The configuration's ``model.type``, or the default U-Net."""
    model = params.get("model") or {}
    return str(model.get("type", DEFAULT_MODEL))


def get_model_function(model_type: str) -> Callable[..., dict]:
    """The builder named ``"<module>.<function>"`` in :mod:`spleeter.model.functions`."""
    module_name, _, function_name = model_type.rpartition(".")
    if not module_name or not function_name:
        raise ModelNotFoundError(f"No model function {model_type} found")
    try:
        module = importlib.import_module(f"{__name__}.functions.{module_name}")
    except ModuleNotFoundError as error:
        raise ModelNotFoundError(f"No model function {model_type} found") from error
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ModelNotFoundError(f"No model function {model_type} found")
    return function


def build_model(params: dict[str, Any]) -> Any:
    """The Keras model of a configuration: mixture magnitude in, one estimate per instrument out.

    Input ``"<mix_name>_spectrogram"`` of shape ``(batch, T, F, n_channels)`` (batch and ``T``
    dynamic); outputs ``{"<instrument>_spectrogram": (batch, T, F, n_channels)}``.
    """
    import keras

    builder = get_model_function(model_type(params))
    spectrogram = keras.Input(
        shape=(None, params["F"], params["n_channels"]),
        name=f"{params['mix_name']}_spectrogram",
        dtype="float32",
    )
    model_params = (params.get("model") or {}).get("params") or {}
    outputs = builder(spectrogram, params["instrument_list"], model_params)
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
