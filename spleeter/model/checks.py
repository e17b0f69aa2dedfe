"""Every check of a configuration, in one place, before any work starts.

:func:`checked_configuration` loads a configuration and checks it against the schema of its
signal and separation settings (:mod:`spleeter.utils.schema`) and against the registered
architecture's needs (:func:`.registry.architecture_problems`), as one list of problems. The
separator, ``spleeter train``, ``spleeter export`` and ``spleeter evaluate`` call it before a
model is downloaded or loaded and before TensorFlow is imported. Nothing here imports
TensorFlow.
"""

from typing import Any

from .. import SpleeterError
from ..utils.configuration import load_configuration
from ..utils.schema import schema_problems
from .registry import ARCHITECTURES, architecture_problems, model_type


class ConfigurationError(SpleeterError, ValueError):
    """A configuration that cannot be used: one line per problem, each naming the
    configuration and the key (the command line prints each as an ``ERROR:spleeter:`` line)."""

    def __init__(self, descriptor: str, problems: list[str]) -> None:
        self.descriptor = descriptor
        self.problems = list(problems)
        self.lines = [
            f"Configuration {descriptor} {problem}"
            if problem.startswith("lacks ")
            else f"Configuration {descriptor}: {problem}"
            for problem in self.problems
        ]
        """The message's lines, one per problem (logged one record each)."""
        super().__init__("\n".join(self.lines))


def configuration_problems(
    params: dict[str, Any], purpose: str = "separate", *, missing: bool = True
) -> list[str]:
    """What keeps ``params`` from being used to ``purpose`` (``separate`` or ``train``): the
    schema's problems, then the architecture's (when ``model`` is well formed enough to name
    one) about keys the schema let through. ``missing=False`` leaves absent keys to the
    caller (the training settings list them with their command-line alternatives)."""
    if purpose == "separate" and _model_is_readable(params.get("model")):
        entry = ARCHITECTURES.get(model_type(params))
        if entry is not None and entry.family is None:
            # An encoder folder lacks every separation key: say what it is instead.
            return [f"{entry.type} ({entry.description}) does not separate sources"]
    problems = schema_problems(params, purpose, missing=missing)
    if _model_is_readable(params.get("model")):
        refused = {problem.split(" ", 1)[0] for problem in problems}  # a key once is enough
        problems += [p for p in architecture_problems(params) if p.split(" ", 1)[0] not in refused]
    return problems


def checked_configuration(descriptor: str, purpose: str = "separate") -> dict[str, Any]:
    """The configuration ``descriptor`` names (see
    :func:`~spleeter.utils.configuration.load_configuration`), checked for ``purpose``.

    Raises:
        SpleeterError: it cannot be loaded, or :class:`ConfigurationError` listing every
            problem found.
    """
    params = load_configuration(descriptor)
    problems = configuration_problems(params, purpose, missing=purpose != "train")
    if problems:
        raise ConfigurationError(descriptor, problems)
    return params


def _model_is_readable(model: Any) -> bool:
    if model is None:
        return True
    return (
        isinstance(model, dict)
        and isinstance(model.get("type", ""), str)
        and isinstance(model.get("params") or {}, dict)
    )
