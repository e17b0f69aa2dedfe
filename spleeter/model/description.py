"""Self-describing model folders: the ``model.json`` beside a model's checkpoint or export.

As open-unmix and demucs do, a folder that ``spleeter train``, ``pretrain`` or ``export``
writes says what it holds, so that ``spleeter separate -p FOLDER`` and ``Separator(FOLDER)``
need no configuration file::

    {
      "format": 1,                       # MODEL_FORMAT; newer formats are refused on reading
      "model_type": "unet.unet",         # the configuration's model.type
      "family": "mask",                  # its separation family (null: not a separator)
      "task": "separation",              # the training task that trains it
      "sources": ["vocals", "accompaniment"],
      "signal": {"sample_rate": 44100, "frame_length": 4096, ...},   # SIGNAL_KEYS
      "configuration": {...},            # the whole configuration, less model_dir
      "training": {"command": "train", "step": 200000, ...},
      "checkpoint": {"name": "model.ckpt-200000", "step": 200000, "fingerprint": "<sha256>"},
      "exports": {"model.onnx": {"bytes": ..., "sha256": ...}},
      "versions": {"python": ..., "spleeter": ..., "tensorflow": ..., ...}
    }

Reading is :func:`spleeter.utils.configuration.load_configuration` (a directory descriptor).
Upstream folders without ``model.json`` keep loading through their configuration.
"""

import json
import os
from pathlib import Path
from typing import Any

from .. import SpleeterError
from ..utils.configuration import MODEL_FORMAT, MODEL_JSON, SIGNAL_KEYS, read_model_description
from ..utils.versions import recorded_versions
from .checkpoint import checkpoint_fingerprint
from .registry import architecture

FOLDER_KEYS = ("model_dir", "MWF")
"""Configuration keys not recorded: where the folder is, and a per-run separation choice."""


def describe_model(
    params: dict[str, Any],
    checkpoint: str | None,
    training: dict[str, Any] | None = None,
    exports: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``model.json`` of the model of ``params`` with the weights of ``checkpoint``."""
    entry = architecture(params)
    description: dict[str, Any] = {
        "format": MODEL_FORMAT,
        "model_type": entry.type,
        "family": entry.family,
        "task": entry.task,
        "sources": entry.outputs(params),
        "signal": {key: params[key] for key in SIGNAL_KEYS if key in params},
        "configuration": {k: v for k, v in params.items() if k not in FOLDER_KEYS},
        "training": dict(training or {}),
        "checkpoint": None,
        "exports": dict(exports or {}),
        "versions": recorded_versions(),
    }
    if checkpoint is not None:
        name = Path(checkpoint).name
        step = name.rsplit("-", 1)[1] if "-" in name else None
        description["checkpoint"] = {
            "name": name,
            "step": int(step) if step and step.isdigit() else None,
            "fingerprint": checkpoint_fingerprint(checkpoint),
        }
    return description


def write_model_description(directory: str | os.PathLike, description: dict[str, Any]) -> Path:
    """Write ``<directory>/model.json`` atomically (a reader never sees half of it)."""
    path = Path(directory) / MODEL_JSON
    temporary = path.with_name(f".{MODEL_JSON}.tmp")
    temporary.write_text(json.dumps(description, indent=2, sort_keys=False) + "\n")
    os.replace(temporary, path)
    return path


def existing_description(directory: str | os.PathLike) -> dict[str, Any] | None:
    """The folder's ``model.json`` if it has a readable one (None otherwise)."""
    try:
        return read_model_description(directory)
    except SpleeterError:
        return None


def record_export(
    directory: str | os.PathLike,
    params: dict[str, Any],
    checkpoint: str,
    export: str | os.PathLike,
    facts: dict[str, Any],
    source: str | os.PathLike,
) -> Path:
    """Describe ``directory`` once ``export`` (made from ``checkpoint`` of the model folder
    ``source``) is written there. The source's training record is kept if it describes the
    same checkpoint, and so are the folder's other exports of that checkpoint."""
    previous = existing_description(source) or {}
    recorded = (previous.get("checkpoint") or {}).get("fingerprint")
    same = recorded == checkpoint_fingerprint(checkpoint)
    exports: dict[str, Any] = {}
    if same and Path(source).resolve() == Path(directory).resolve():
        exports.update(previous.get("exports") or {})
    exports[Path(export).name] = facts
    training = previous.get("training") if same else None
    return write_model_description(directory, describe_model(params, checkpoint, training, exports))
