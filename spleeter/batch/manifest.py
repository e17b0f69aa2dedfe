"""The run manifest: one SQLite row per input, in the output folder, so that a run resumes.

Only the process that drives the run writes it (workers return their outcomes), so SQLite's
locking never meets a network file system's. A row is ``done`` for the settings it was
separated with: a re-run with other settings separates again.
"""

import json
import os
import sqlite3
import time

from .job import Outcome

MANIFEST_NAME = ".spleeter-manifest.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    input TEXT PRIMARY KEY,
    state TEXT NOT NULL,            -- pending, running, done or failed
    settings TEXT NOT NULL,         -- Job.settings() it was (or is being) separated with
    attempts INTEGER NOT NULL DEFAULT 0,
    worker TEXT,
    outputs TEXT,                   -- JSON {instrument: path}
    checksums TEXT,                 -- JSON {path: sha256}
    seconds REAL,                   -- wall time of the separation on the worker
    audio_seconds REAL,
    error TEXT,
    updated REAL NOT NULL
)
"""


class Manifest:
    """The states of a run's inputs, stored in ``directory/.spleeter-manifest.sqlite``."""

    def __init__(self, directory: str) -> None:
        self.path = os.path.join(directory, MANIFEST_NAME)
        self._created = not os.path.exists(self.path)
        self._db = sqlite3.connect(self.path, isolation_level=None)  # autocommit: each row lands
        self._db.execute("PRAGMA journal_mode=DELETE")
        self._db.execute(_SCHEMA)

    def close(self) -> None:
        """Close; a manifest this run created but never wrote to is removed (no trace of a
        run that could not start)."""
        empty = self._db.execute("SELECT COUNT(*) FROM files").fetchone()[0] == 0
        self._db.close()
        if self._created and empty:
            os.remove(self.path)

    def __enter__(self) -> "Manifest":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def is_done(self, filename: str, settings: str) -> bool:
        """Whether ``filename`` was separated with ``settings`` and its outputs still exist
        (checksums are kept for audits; re-reading them would read the whole catalogue)."""
        row = self._db.execute(
            "SELECT state, settings, outputs FROM files WHERE input = ?", (filename,)
        ).fetchone()
        if row is None or row[0] != "done" or row[1] != settings:
            return False
        return all(os.path.isfile(path) for path in json.loads(row[2]).values())

    def start(self, filename: str, settings: str) -> None:
        """Record that ``filename`` is handed to the cluster (one more attempt)."""
        self._db.execute(
            "INSERT INTO files (input, state, settings, attempts, updated) "
            "VALUES (?, 'running', ?, 1, ?) ON CONFLICT(input) DO UPDATE SET "
            "state = 'running', settings = excluded.settings, attempts = attempts + 1, "
            "error = NULL, updated = excluded.updated",
            (filename, settings, time.time()),
        )

    def finish(self, outcome: Outcome) -> None:
        """Record what separating an input gave: ``done`` with its checksums, or ``failed``."""
        self._db.execute(
            "UPDATE files SET state = ?, worker = ?, outputs = ?, checksums = ?, seconds = ?, "
            "audio_seconds = ?, error = ?, updated = ? WHERE input = ?",
            (
                "failed" if outcome.error else "done",
                outcome.worker,
                json.dumps(outcome.outputs),
                json.dumps(outcome.checksums),
                outcome.seconds,
                outcome.audio_seconds,
                outcome.error,
                time.time(),
                outcome.filename,
            ),
        )

    def rows(self) -> dict[str, dict]:
        """Every row, by input (for reports and tests)."""
        cursor = self._db.execute("SELECT * FROM files")
        names = [column[0] for column in cursor.description]
        return {row[0]: dict(zip(names, row, strict=True)) for row in cursor}
