"""Reading a separation/training configuration: ``spleeter:NAME``, a JSON file path, or a
model folder (a directory whose ``model.json`` describes the model it holds)."""

import json
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Any

from .. import SpleeterError, resources

EMBEDDED_CONFIGURATION_PREFIX = "spleeter:"

SIGNAL_KEYS = (
    "mix_name",
    "instrument_list",
    "sample_rate",
    "frame_length",
    "frame_step",
    "T",
    "F",
    "n_channels",
)
"""Keys describing the audio, the STFT and the network's input, needed to separate or train."""

MODEL_JSON = "model.json"
"""The file that makes a directory a self-describing model folder (written by ``spleeter
train``, ``pretrain`` and ``export``; see :mod:`spleeter.model.description`)."""

MODEL_FORMAT = 1
"""The newest ``model.json`` format this version reads and writes."""


def embedded_configuration_names() -> list[str]:
    """Names usable as ``spleeter:NAME`` (the JSON files bundled in ``spleeter/resources``)."""
    root = importlib_resources.files(resources)
    return sorted(p.name[: -len(".json")] for p in root.iterdir() if p.name.endswith(".json"))


def load_configuration(descriptor: str) -> dict[str, Any]:
    """Load a configuration as a plain dict, exactly as written (no defaults merged).

    ``descriptor`` is ``spleeter:NAME`` for a bundled configuration, otherwise a path (relative
    to the current directory) to a JSON file, or to a model folder: its ``model.json``'s
    configuration, with ``model_dir`` that folder.

    Raises:
        SpleeterError: the configuration does not exist or is not a JSON object.
    """
    descriptor = str(descriptor)
    if Path(descriptor).is_dir():
        return folder_configuration(descriptor)
    if descriptor.startswith(EMBEDDED_CONFIGURATION_PREFIX):
        name = descriptor[len(EMBEDDED_CONFIGURATION_PREFIX) :]
        resource = importlib_resources.files(resources) / f"{name}.json"
        if not name or not resource.is_file():
            known = ", ".join(embedded_configuration_names())
            raise SpleeterError(f"No embedded configuration {name} found (known: {known})")
        return _parse(resource.read_text(encoding="utf-8"), descriptor)
    path = Path(descriptor)
    if not path.is_file():
        raise SpleeterError(f"Configuration file {descriptor} not found{_suggestion(descriptor)}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SpleeterError(f"Configuration file {descriptor} cannot be read: {error}") from error
    return _parse(text, descriptor)


def _suggestion(descriptor: str) -> str:
    """``; did you mean spleeter:4stems?`` for a missing file named like a bundled
    configuration (``4stems``, ``4stems.json``, ``spleeter-4stems``), else nothing."""
    import difflib

    names = embedded_configuration_names()
    stem = Path(descriptor).name.removesuffix(".json").removeprefix("spleeter").lstrip(":-_ ")
    matches = [stem] if stem in names else difflib.get_close_matches(stem, names, n=1)
    return f"; did you mean {EMBEDDED_CONFIGURATION_PREFIX}{matches[0]}?" if matches else ""


def _parse(text: str, descriptor: str) -> dict[str, Any]:
    try:
        params = json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as error:
        raise SpleeterError(
            f"Configuration {descriptor} is not valid JSON: {error.msg} "
            f"(line {error.lineno}, column {error.colno})"
        ) from error
    except _DuplicateKeyError as error:
        raise SpleeterError(f"Configuration {descriptor}: key {error} appears twice") from None
    except RecursionError:
        raise SpleeterError(f"Configuration {descriptor} is nested too deeply") from None
    if not isinstance(params, dict):
        raise SpleeterError(f"Configuration {descriptor} must be a JSON object")
    return params


class _DuplicateKeyError(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refused when a key appears twice (JSON readers keep one silently)."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(json.dumps(key))
        result[key] = value
    return result


def read_model_description(directory: str | Path) -> dict[str, Any]:
    """The ``model.json`` of a model folder, checked to be one this version can read.

    Raises:
        SpleeterError: no ``model.json`` there (an upstream model folder: its configuration
            must be given), or one that is unreadable, of a newer format or without a
            configuration.
    """
    path = Path(directory) / MODEL_JSON
    if not path.is_file():
        raise SpleeterError(
            f"{directory} is a directory without {MODEL_JSON}: give a configuration "
            f"(spleeter:NAME or a JSON file whose model_dir is this folder) for a model "
            f"folder that does not describe itself"
        )
    try:
        description = _parse(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError) as error:
        raise SpleeterError(f"{path} cannot be read: {error}") from error
    written = description.get("format")
    if not isinstance(written, int) or isinstance(written, bool):
        raise SpleeterError(f"{path} has no format number: not a spleeter model description")
    if written > MODEL_FORMAT:
        raise SpleeterError(
            f"{path} has format {written}, written by a newer spleeter; this one reads up to "
            f"format {MODEL_FORMAT}: upgrade spleeter"
        )
    if not isinstance(description.get("configuration"), dict):
        raise SpleeterError(f"{path} has no configuration object")
    return description


def folder_configuration(directory: str | Path) -> dict[str, Any]:
    """The configuration of the model in a model folder, its ``model_dir`` that folder."""
    params = dict(read_model_description(directory)["configuration"])
    # Absolute: a relative model_dir would be looked up under MODEL_PATH first.
    params["model_dir"] = str(Path(directory).resolve())
    return params
