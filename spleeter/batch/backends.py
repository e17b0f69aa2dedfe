"""The small interface every cluster engine implements, and how a name picks one.

Adding an engine is one module with a ``Backend`` class (see ``dask_backend.py``) and one line
in :data:`BACKENDS`.
"""

from collections.abc import Iterable, Iterator
from importlib import import_module
from typing import Protocol

from .. import SpleeterError
from ..utils.extras import install_hint
from .job import Job, Outcome

BACKENDS = {"dask": "spleeter.batch.dask_backend", "ray": "spleeter.batch.ray_backend"}
"""Engine name: module holding its ``Backend`` class and ``REQUIRES`` (the extra to install)."""


class Backend(Protocol):
    """A running cluster whose workers each hold one loaded model (a context manager)."""

    def __init__(self, job: Job, workers: int | None, address: str | None) -> None:
        """Start ``workers`` local worker processes, or join the cluster at ``address``."""

    def __enter__(self) -> "Backend": ...

    def __exit__(self, *_: object) -> None: ...

    def worker_errors(self) -> dict[str, str | None]:
        """Each worker's model-loading error, ``None`` for a worker ready to separate."""

    def retire(self, workers: list[str]) -> None:
        """Take ``workers`` out of the run (they could not load the model)."""

    def separate(self, files: Iterable[str]) -> Iterator[Outcome]:
        """Separate every file once on some worker (again elsewhere if its worker dies);
        yield the outcomes as they complete, a failure as an outcome with an error."""


def open_backend(name: str, job: Job, workers: int | None, address: str | None) -> Backend:
    """The engine ``name`` started for ``job``; a missing package or cluster is one clear line."""
    if name not in BACKENDS:
        raise SpleeterError(f"unknown cluster engine {name!r} (choose {', '.join(BACKENDS)})")
    try:
        module = import_module(BACKENDS[name])
    except ImportError as error:
        raise SpleeterError(
            f"--cluster {name} needs {error.name}: install this project's {name} extra "
            f"({install_hint(name)})"
        ) from None
    return module.Backend(job, workers, address)
