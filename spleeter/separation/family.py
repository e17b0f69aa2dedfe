"""The seam between the pipeline and a kind of separation."""

from typing import Protocol

import numpy as np


class TrackSeparation(Protocol):
    """The separation of one track, in one pass or two.

    With ``passes == 2`` the pipeline first hands every segment's mixture STFT to
    :meth:`observe` (frames ``(n, bins, C)`` complex64, in order), then asks :meth:`sources`,
    then hands the segments again to :meth:`separate`. With one pass it calls only
    :meth:`separate`. The segments are the same both times.
    """

    passes: int

    def observe(self, spectrum: np.ndarray) -> None:
        """Pass one: take a segment into the track's statistics."""
        ...

    def sources(self) -> list[str]:
        """The track's source names, in output order (after the observation, if any)."""
        ...

    def separate(self, spectrum: np.ndarray) -> dict[str, np.ndarray]:
        """A segment's separated STFTs ``{source: (n, bins, C)}`` complex64."""
        ...


class SeparationFamily(Protocol):
    """A kind of separation, bound to a configuration and its network."""

    name: str
    named_sources: bool
    """Whether the sources are the dataset's stems by name (a mask model's ``vocals``...) or
    labels such as ``source_1`` that evaluation matches to stems by their content."""

    def declared_sources(self) -> list[str] | None:
        """The sources every track gives, when the configuration fixes them (None when a
        family decides them per track)."""
        ...

    def track(self) -> TrackSeparation:
        """A fresh separation for the next track."""
        ...
