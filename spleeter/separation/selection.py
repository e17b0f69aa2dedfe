"""Which sources a separation writes: ``--stems vocals,drums`` or Demucs' ``--two-stems vocals``.

A choice of outputs made after separation, the same for every family: ``--stems`` keeps some of
the sources (in the model's order); ``--two-stems NAME`` gives ``NAME`` and ``no_NAME``, the sum
of every other source, so that the two add up to what all the sources add up to.
"""

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from .. import SpleeterError


@dataclass(frozen=True)
class StemSelection:
    """The output sources of a run; the default keeps every source, as upstream."""

    stems: tuple[str, ...] | None = None
    two_stems: str | None = None

    def __post_init__(self) -> None:
        if self.stems is not None and self.two_stems is not None:
            raise SpleeterError("--stems and --two-stems cannot be combined: choose one")
        if self.stems is not None:
            if not self.stems:
                raise SpleeterError("--stems needs at least one source name")
            repeated = sorted({name for name in self.stems if self.stems.count(name) > 1})
            if repeated:
                raise SpleeterError(f"--stems names {', '.join(repeated)} twice")

    @classmethod
    def of(cls, stems: str | Iterable[str] | None, two_stems: str | None) -> "StemSelection":
        """From the command line's ``--stems a,b`` (or a list) and ``--two-stems``."""
        if isinstance(stems, str):
            stems = [name.strip() for name in stems.split(",") if name.strip()]
        return cls(None if stems is None else tuple(stems), two_stems or None)

    @property
    def is_default(self) -> bool:
        return self.stems is None and self.two_stems is None

    def outputs(self, sources: list[str]) -> list[str]:
        """The names written for a track whose model gives ``sources``.

        Raises:
            SpleeterError: a chosen name is not one of ``sources`` (all of them named at once).
        """
        if self.two_stems is not None:
            self._check([self.two_stems], sources)
            if len(sources) < 2:
                raise SpleeterError("--two-stems needs a model with two sources or more")
            return [self.two_stems, f"no_{self.two_stems}"]
        if self.stems is not None:
            self._check(list(self.stems), sources)
            return [name for name in sources if name in self.stems]
        return list(sources)

    @staticmethod
    def _check(chosen: list[str], sources: list[str]) -> None:
        unknown = [name for name in chosen if name not in sources]
        if unknown:
            raise SpleeterError(
                f"unknown source(s) {', '.join(unknown)}: this model gives {', '.join(sources)}"
            )

    def apply(self, pieces: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One piece of every source -> the same piece of every output."""
        if self.two_stems is not None:
            kept = pieces[self.two_stems]
            rest = [piece for name, piece in pieces.items() if name != self.two_stems]
            return {self.two_stems: kept, f"no_{self.two_stems}": np.sum(rest, axis=0)}
        if self.stems is not None:
            return {name: piece for name, piece in pieces.items() if name in self.stems}
        return dict(pieces)

    def stream(self, pieces: Iterable[Mapping[str, np.ndarray]]) -> Iterator[dict[str, np.ndarray]]:
        for piece in pieces:
            yield self.apply(piece)
