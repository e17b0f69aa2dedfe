"""The schema of a configuration's signal and separation settings, checked before any work.

One declarative description of every key that separation and training read about the audio,
the STFT, the network's input and the masks: its type and its bounds, including the bounds one
key sets on another (``frame_step`` at most ``frame_length``, ``F`` at most the STFT's
``frame_length // 2 + 1`` bins, ``mix_name`` not an instrument). :func:`schema_problems` gives
one phrase per problem, naming the key, its value and what is expected, e.g.
``F (5000) must be at most frame_length // 2 + 1 = 2049``. Unknown keys are allowed (upstream's
configurations carry training keys, read and checked by the training settings).

Why pydantic (v2): the settings are declared once as typed fields with their constraints, it
reports every failing field at once with its location (nested keys included) and the offending
input, and it is a well-kept, widely used library. Its validation is made strict where JSON
would be ambiguous: a bool is not an integer, a string is not a number, NaN and infinities are
not numbers; an integer-valued float (``512.0``) is accepted as the integer, as before.

This module knows nothing of the networks (nothing upward of ``spleeter.utils`` is imported):
the per-architecture checks of the model registry are added by the caller.
"""

import json
import math
from collections.abc import Iterable
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

MASK_EXTENSIONS = ("zeros", "average")
"""``mask_extension`` values (upstream's): above ``F``, masks are zero or the frame's average."""

CHANNELS = (1, 2)
"""``n_channels`` values: training takes mono or stereo; separation needs stereo (checked when
it runs, as upstream's separator always fed it stereo)."""

MAX_EXPONENT = 10
"""The largest ``separation_exponent``: a magnitude of a few thousand (a loud frame of 4096
samples) to a higher power overflows the float32 ratio masks into NaN."""

INT_LIMIT = 2**31 - 1
"""The largest size accepted (TensorFlow's shapes and indices are 32-bit integers)."""


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        raise PydanticCustomError("integer", "must be an integer, not a boolean")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise PydanticCustomError("integer", "must be a finite integer")
        if not value.is_integer():
            raise PydanticCustomError("integer", "must be an integer")
        value = int(value)
    if not isinstance(value, int):
        raise PydanticCustomError("integer", "must be an integer{kind}", _kind(value))
    if abs(value) > INT_LIMIT:
        raise PydanticCustomError("integer", "must be at most 2**31 - 1")
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PydanticCustomError("number", "must be a number{kind}", _kind(value))
    if not math.isfinite(value):
        raise PydanticCustomError("number", "must be a finite number")
    return float(value)


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise PydanticCustomError("string", "must be a string{kind}", _kind(value))
    if not value.strip():
        raise PydanticCustomError("string", "must be a non-empty string")
    return value


def _object(value: Any) -> dict:
    if not isinstance(value, dict):
        raise PydanticCustomError("object", "must be an object{kind}", _kind(value))
    return value


def _kind(value: Any) -> dict[str, str]:
    """`` (got a string)``: what the value is, where its JSON does not make it plain."""
    names = {
        str: "a string",
        list: "a list",
        dict: "an object",
        bool: "a boolean",
        int: "a number",
        float: "a number",
    }
    if value is None:
        return {"kind": ""}
    return {"kind": f" (got {names.get(type(value), type(value).__name__)})"}


def _list(value: Any) -> list:
    if not isinstance(value, list):
        raise PydanticCustomError("list", "must be a list of names{kind}", _kind(value))
    if not value:
        raise PydanticCustomError("list", "must name at least one instrument")
    return value


def _model(value: Any) -> Any:
    """``model``: an object (``null`` means the default U-Net, as the registry reads it)."""
    return {} if value is None else _object(value)


def _channels(value: Any) -> int:
    value = _integer(value)
    if value not in CHANNELS:
        raise PydanticCustomError("channels", "must be 1 (mono) or 2 (stereo)")
    return value


def _mask_extension(value: Any) -> str:
    return _choice(value, MASK_EXTENSIONS)


def _choice(value: Any, choices: Iterable[str]) -> str:
    choices = tuple(choices)
    if not isinstance(value, str) or value not in choices:
        raise PydanticCustomError(
            "choice", "must be one of {choices}", {"choices": ", ".join(map(json.dumps, choices))}
        )
    return value


Int = Annotated[int, BeforeValidator(_integer)]
Number = Annotated[float, BeforeValidator(_number)]
Name = Annotated[str, BeforeValidator(_string)]
Object = Annotated[dict[str, Any], BeforeValidator(_object)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class ModelSettings(_Strict):
    """``model``: the registered network and its parameters (checked by the registry)."""

    type: Name = "unet.unet"
    params: Object = Field(default_factory=dict)


class SignalSettings(_Strict):
    """The audio, the STFT and the network's input: what separation and training both read."""

    mix_name: Name
    instrument_list: Annotated[list[Name], BeforeValidator(_list)]
    sample_rate: Annotated[Int, Field(gt=0)]
    frame_length: Annotated[Int, Field(ge=2)]
    frame_step: Annotated[Int, Field(gt=0)]
    T: Annotated[Int, Field(gt=0)]
    F: Annotated[Int, Field(gt=0)]
    n_channels: Annotated[Int, BeforeValidator(_channels)]
    model: Annotated[ModelSettings, BeforeValidator(_model)] = Field(default_factory=ModelSettings)

    @field_validator("instrument_list")
    @classmethod
    def _distinct(cls, names: list[str], info: ValidationInfo) -> list[str]:
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise PydanticCustomError(
                "distinct",
                "must name each instrument once ({names} repeated)",
                {"names": ", ".join(repeated)},
            )
        mix = info.data.get("mix_name")
        if mix in names:
            raise PydanticCustomError("distinct", "must not hold mix_name ({mix})", {"mix": mix})
        return names

    @field_validator("frame_step")
    @classmethod
    def _step_within_frame(cls, step: int, info: ValidationInfo) -> int:
        length = info.data.get("frame_length")
        if length is not None and step > length:
            raise PydanticCustomError(
                "step", "must be at most frame_length ({length})", {"length": length}
            )
        return step

    @field_validator("F")
    @classmethod
    def _bins_of_the_stft(cls, bins: int, info: ValidationInfo) -> int:
        length = info.data.get("frame_length")
        if length is not None and bins > length // 2 + 1:
            raise PydanticCustomError(
                "bins",
                "must be at most frame_length // 2 + 1 = {bins} (the STFT's bins)",
                {"bins": length // 2 + 1},
            )
        return bins


class SeparationSettings(SignalSettings):
    """Everything separation reads: the signal settings, the masks, the model."""

    model_dir: Name
    separation_exponent: Annotated[Number, Field(gt=0, le=MAX_EXPONENT)]
    mask_extension: Annotated[str, BeforeValidator(_mask_extension)]
    model: Annotated[ModelSettings, BeforeValidator(_model)]


SCHEMAS: dict[str, type[SignalSettings]] = {
    "separate": SeparationSettings,
    "train": SignalSettings,
}
"""The schema checked for each use of a configuration."""

_BOUNDS = {
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than_equal": "must be <= {le}",
}


def schema_problems(
    params: dict[str, Any], purpose: str = "separate", *, missing: bool = True
) -> list[str]:
    """What is wrong with ``params`` for ``purpose`` (``separate`` or ``train``), one phrase a
    problem; empty when every key checked is usable.

    Keys the schema needs but ``params`` lacks are listed together in one phrase,
    ``lacks K1, K2 (needed to separate)`` (first), unless ``missing`` is false (the caller
    reports them itself).
    """
    schema = SCHEMAS[purpose]
    try:
        schema.model_validate(params)
    except ValidationError as error:
        return _phrases(error, params, purpose, missing)
    return []


def _phrases(error: ValidationError, params: Any, purpose: str, missing: bool) -> list[str]:
    absent: list[str] = []
    problems: list[str] = []
    for entry in error.errors(include_url=False):
        key = _dotted(list(entry["loc"]))
        if entry["type"] == "missing":
            absent.append(key)
            continue
        message = entry["msg"]
        template = _BOUNDS.get(entry["type"])
        if template:
            message = template.format(**entry.get("ctx", {}))
        problems.append(f"{key} ({_shown(entry['input'])}) {message}")
    if absent and missing:
        needed = "separate" if purpose == "separate" else purpose
        problems.insert(0, f"lacks {', '.join(absent)} (needed to {needed})")
    return problems


def _dotted(location: list[Any]) -> str:
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _shown(value: Any, limit: int = 60) -> str:
    """A value as JSON would write it (``null``, ``"text"``, ``NaN``), cut to ``limit``."""
    try:
        text = json.dumps(value, allow_nan=True, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
