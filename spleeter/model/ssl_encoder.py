"""The SSL encoder as an architecture: its networks, and reading an encoder directory.

An encoder directory (``encoder.json`` + a checkpoint of ``ssl_encoder/...`` variables, see
:mod:`spleeter.ssl.encoder`) is what the fused separator loads its encoder from, so reading it
lives here, with the networks; writing it is the pretraining procedure's job.
"""

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from .. import SpleeterError
from ..audio.features import encoder_mel_matrix
from .encoder_config import EncoderConfig

ENCODER_JSON = "encoder.json"
ENCODER_FORMAT = 1
HEAD_NAME = "ssl_head"


@dataclass(frozen=True)
class EncoderAudio:
    """The signal an encoder reads: the separator's STFT grid and block length."""

    sample_rate: int
    frame_length: int
    frame_step: int
    F: int
    n_channels: int
    T: int

    @classmethod
    def from_params(cls, params: dict[str, Any], frames: int | None = None) -> "EncoderAudio":
        return cls(
            sample_rate=int(params["sample_rate"]),
            frame_length=int(params["frame_length"]),
            frame_step=int(params["frame_step"]),
            F=int(params["F"]),
            n_channels=int(params.get("n_channels", 2)),
            T=int(frames if frames is not None else params["T"]),
        )


def variables_view(layer: Any) -> Any:
    """An object :func:`~spleeter.model.checkpoint.load_checkpoint` and ``save_checkpoint``
    accept as a "model": the variables of one layer (the encoder), nothing pruned."""
    return SimpleNamespace(weights=list(layer.weights), layers=[])


def build_pretraining_model(config: EncoderConfig, units: int) -> tuple[Any, Any]:
    """The masked-prediction model and its encoder layer.

    Inputs ``log_mel`` ``(batch, T, n_mels)`` and ``span_mask`` ``(batch, T)`` bool; output the
    unit logits ``(batch, T, units)`` (float32) of a linear head (``ssl_head``) on the last
    hidden state.
    """
    import keras

    from .layers.ssl_encoder import EncoderNetwork

    features = keras.Input((None, config.n_mels), name="log_mel", dtype="float32")
    mask = keras.Input((None,), name="span_mask", dtype="bool")
    network = EncoderNetwork(config)
    hidden = network(features, span_mask=mask)
    logits = keras.layers.Dense(units, name=HEAD_NAME, dtype="float32")(hidden[-1])
    return keras.Model([features, mask], logits, name="ssl_pretraining"), network


def build_feature_model(
    config: EncoderConfig, audio: EncoderAudio, layer: int | None = None
) -> tuple[Any, Any]:
    """Magnitude ``(batch, T, F, C)`` -> hidden state ``layer`` ``(batch, T, dim)``: the
    log-mel front end and the encoder exactly as the fused separator runs them."""
    import keras

    from .layers.ssl_encoder import EncoderNetwork, LogMel

    layer = config.layers if layer is None else int(layer)
    magnitude = keras.Input((None, audio.F, audio.n_channels), name="magnitude", dtype="float32")
    features = LogMel(encoder_mel_matrix(config, audio.F), name="log_mel")(magnitude)
    network = EncoderNetwork(config, input_bins=audio.F)
    hidden = network(features, depth=layer, training=False)
    return keras.Model(magnitude, hidden[-1], name="ssl_features"), network


def describe(
    config: EncoderConfig, audio: EncoderAudio, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The content of ``encoder.json``."""
    return {
        "format": ENCODER_FORMAT,
        "encoder": config.to_dict(),
        "audio": asdict(audio),
        **(extra or {}),
    }


def read_description(directory: str | os.PathLike) -> dict[str, Any]:
    """``encoder.json`` of an encoder directory.

    Raises:
        SpleeterError: the directory or its ``encoder.json`` is missing or unreadable.
    """
    path = Path(directory) / ENCODER_JSON
    if not Path(directory).is_dir():
        raise SpleeterError(
            f"Encoder directory {directory} does not exist: pretrain one with "
            "spleeter pretrain -p CONFIG -d AUDIO_DIR (see docs/ssl.md)"
        )
    try:
        description = json.loads(path.read_text())
    except FileNotFoundError as error:
        raise SpleeterError(
            f"{directory} is not an encoder directory (no {ENCODER_JSON}; spleeter pretrain "
            "writes one when an iteration ends)"
        ) from error
    except (OSError, ValueError) as error:
        raise SpleeterError(f"{path} cannot be read: {error}") from error
    if not isinstance(description, dict) or "encoder" not in description:
        raise SpleeterError(f"{path} has no encoder section")
    return description


def description_config(description: dict[str, Any]) -> tuple[EncoderConfig, EncoderAudio]:
    config = EncoderConfig.from_params(description["encoder"])
    audio = EncoderAudio(**description["audio"])
    return config, audio


def load_encoder_weights(network: Any, directory: str, input_bins: int | None = None) -> str:
    """Assign ``network``'s variables from the encoder in ``directory``; return the checkpoint.

    Raises:
        SpleeterError: no encoder there, another architecture or input band, or a checkpoint
            without the variables.
    """
    from .checkpoint import find_checkpoint, load_checkpoint

    description = read_description(directory)
    config, audio = description_config(description)
    if config != network.config:
        ours, theirs = network.config.to_dict(), config.to_dict()
        differences = [
            f"{k} {ours[k]!r} here, {theirs[k]!r} there" for k in ours if ours[k] != theirs[k]
        ]
        raise SpleeterError(
            f"The encoder in {directory} has another architecture than model.params.encoder: "
            + "; ".join(differences)
        )
    if input_bins is not None and input_bins != audio.F:
        raise SpleeterError(
            f"The encoder in {directory} was pretrained on F = {audio.F} bins, the separator "
            f"reads F = {input_bins}: its mel front end would differ"
        )
    checkpoint = find_checkpoint(directory)
    load_checkpoint(variables_view(network), checkpoint)
    return checkpoint
