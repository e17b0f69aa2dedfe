"""Reading a separation/training configuration: ``spleeter:NAME`` or a JSON file path."""

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


def embedded_configuration_names() -> list[str]:
    """Names usable as ``spleeter:NAME`` (the JSON files bundled in ``spleeter/resources``)."""
    root = importlib_resources.files(resources)
    return sorted(p.name[: -len(".json")] for p in root.iterdir() if p.name.endswith(".json"))


def load_configuration(descriptor: str) -> dict[str, Any]:
    """Load a configuration as a plain dict, exactly as written (no defaults merged).

    ``descriptor`` is ``spleeter:NAME`` for a bundled configuration, otherwise a path to a JSON
    file, relative to the current directory.

    Raises:
        SpleeterError: the configuration does not exist or is not a JSON object.
    """
    descriptor = str(descriptor)
    if descriptor.startswith(EMBEDDED_CONFIGURATION_PREFIX):
        name = descriptor[len(EMBEDDED_CONFIGURATION_PREFIX) :]
        resource = importlib_resources.files(resources) / f"{name}.json"
        if not name or not resource.is_file():
            known = ", ".join(embedded_configuration_names())
            raise SpleeterError(f"No embedded configuration {name} found (known: {known})")
        return _parse(resource.read_text(encoding="utf-8"), descriptor)
    path = Path(descriptor)
    if not path.is_file():
        raise SpleeterError(f"Configuration file {descriptor} not found")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SpleeterError(f"Configuration file {descriptor} cannot be read: {error}") from error
    return _parse(text, descriptor)


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
