"""Reading an SSL encoder directory: ``encoder.json`` (architecture and signal) + weights.

An encoder directory (``encoder.json`` + a checkpoint of ``ssl_encoder/...`` variables, see
:mod:`spleeter.ssl.encoder`) is what the fused separator loads its encoder from, so reading it
lives with the networks; writing it is the pretraining procedure's job.
"""

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from .. import SpleeterError
from .encoder_config import EncoderConfig

ENCODER_JSON = "encoder.json"
ENCODER_FORMAT = 1


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


def encoder_configuration(config: EncoderConfig, audio: EncoderAudio) -> dict[str, Any]:
    """The configuration of an encoder (with its pretraining head) as a model folder's
    ``model.json`` records it: the signal it reads and ``model.type`` ``ssl.encoder``."""
    return {
        **asdict(audio),
        "model": {"type": "ssl.encoder", "params": config.to_dict()},
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
