"""The test folder's ``manifest.json``: trials, their conditions and which is which.

The manifest is the only place that maps a condition's opaque id to what it is (hidden
reference, anchor, system); it stays on the server and is never served.
"""

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import SpleeterError
from . import MANIFEST_NAME

FORMAT: str = "spleeter-mushra"
VERSION: int = 1

HIDDEN_REFERENCE: str = "reference"
"""Name of the hidden reference condition."""


@dataclass(frozen=True)
class Condition:
    """One signal of a trial: ``kind`` is ``reference``, ``anchor`` or ``system``."""

    id: str
    kind: str
    name: str
    file: str
    """Path relative to the test folder."""


@dataclass(frozen=True)
class Trial:
    """One item (an excerpt of one stem of one track) and its conditions."""

    id: str
    track: str
    stem: str
    start: float
    duration: float
    reference: str
    """The open reference's file, relative to the test folder."""
    conditions: tuple[Condition, ...]
    training: bool = False
    loudness: float = -23.0

    def condition(self, condition_id: str) -> Condition | None:
        return next((c for c in self.conditions if c.id == condition_id), None)


@dataclass(frozen=True)
class Manifest:
    """A whole test."""

    sample_rate: int
    systems: tuple[str, ...]
    stems: tuple[str, ...]
    trials: tuple[Trial, ...]
    attribute: str = "basic audio quality"
    anchors: dict = field(default_factory=dict)
    format: str = FORMAT
    version: int = VERSION

    def trial(self, trial_id: str) -> Trial | None:
        return next((t for t in self.trials if t.id == trial_id), None)

    @property
    def rated_trials(self) -> tuple[Trial, ...]:
        """Trials whose grades count (the training trial's are discarded)."""
        return tuple(t for t in self.trials if not t.training)

    def files(self) -> set[str]:
        """Every audio file of the test, relative to the test folder."""
        return {t.reference for t in self.trials} | {
            c.file for t in self.trials for c in t.conditions
        }

    def save(self, folder: Path) -> Path:
        path = Path(folder) / MANIFEST_NAME
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return path


def load_manifest(folder: str | Path) -> Manifest:
    """Read ``folder/manifest.json``; a missing or foreign file is a :class:`SpleeterError`."""
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        raise SpleeterError(f"{folder} is not a listening test: {path} not found")
    try:
        data = json.loads(path.read_text())
        if data.get("format") != FORMAT or data.get("version") != VERSION:
            raise ValueError(f"format {data.get('format')!r} version {data.get('version')!r}")
        trials = tuple(
            Trial(
                **{k: v for k, v in t.items() if k != "conditions"},
                conditions=tuple(Condition(**c) for c in t["conditions"]),
            )
            for t in data["trials"]
        )
        return Manifest(
            **{
                **data,
                "systems": tuple(data["systems"]),
                "stems": tuple(data["stems"]),
                "trials": trials,
            }
        )
    except (ValueError, KeyError, TypeError) as error:
        raise SpleeterError(f"{path} is not a valid listening-test manifest: {error}") from None
