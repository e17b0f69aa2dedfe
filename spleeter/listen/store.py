"""Listeners and ratings in SQLite, in WAL mode, with every write committed before it returns.

Tables: ``meta`` (the admin token), ``listeners`` (token, name, the listener's own random order
of trials and conditions, how many trials are done), ``submissions`` (one row per trial a
listener finished, training included) and ``ratings`` (one row per listener, rated trial and
condition; the training trial's grades are not kept). A submit is one transaction: the ratings,
the submission row and the listener's new position, or nothing.
"""

import json
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .manifest import Manifest

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS listeners (
    token TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created REAL NOT NULL,
    plan TEXT NOT NULL,
    position INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS submissions (
    listener TEXT NOT NULL REFERENCES listeners(name),
    trial TEXT NOT NULL,
    position INTEGER NOT NULL,
    saved REAL NOT NULL,
    PRIMARY KEY (listener, trial)
);
CREATE TABLE IF NOT EXISTS ratings (
    listener TEXT NOT NULL REFERENCES listeners(name),
    trial TEXT NOT NULL,
    condition TEXT NOT NULL,
    score REAL NOT NULL CHECK (score >= 0 AND score <= 100),
    saved REAL NOT NULL,
    PRIMARY KEY (listener, trial, condition)
);
"""


class SubmitRefused(Exception):
    """A submit that changes nothing: ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Listener:
    token: str
    name: str
    plan: list  # [[trial id, [condition ids in play order]], ...], training first
    position: int

    @property
    def done(self) -> bool:
        return self.position >= len(self.plan)


def make_plan(manifest: Manifest, rng: secrets.SystemRandom) -> list:
    """The training trial first, then the rated trials in random order, each trial's
    conditions in random order."""
    training = [t for t in manifest.trials if t.training]
    rated = list(manifest.rated_trials)
    rng.shuffle(rated)
    plan = []
    for trial in training + rated:
        ids = [c.id for c in trial.conditions]
        rng.shuffle(ids)
        plan.append([trial.id, ids])
    return plan


class Store:
    """The ratings database of one test folder; safe to share between threads."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA busy_timeout=5000")
        with self._lock:
            self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def journal_mode(self) -> str:
        with self._lock:
            return self._db.execute("PRAGMA journal_mode").fetchone()[0]

    def _transaction(self, work):
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                result = work(self._db)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return result

    def admin_token(self) -> str:
        """The admin token, made on first use and kept in the database."""

        def work(db):
            row = db.execute("SELECT value FROM meta WHERE key = 'admin_token'").fetchone()
            if row:
                return row[0]
            token = secrets.token_urlsafe(24)
            db.execute("INSERT INTO meta VALUES ('admin_token', ?)", (token,))
            return token

        return self._transaction(work)

    def ensure_listeners(self, manifest: Manifest, count: int) -> list[Listener]:
        """At least ``count`` listeners (new ones get a token and their own order); all of
        them, oldest first."""
        rng = secrets.SystemRandom()

        def work(db):
            existing = db.execute("SELECT COUNT(*) FROM listeners").fetchone()[0]
            for number in range(existing + 1, count + 1):
                db.execute(
                    "INSERT INTO listeners (token, name, created, plan) VALUES (?, ?, ?, ?)",
                    (
                        secrets.token_urlsafe(24),
                        f"listener{number:02d}",
                        time.time(),
                        json.dumps(make_plan(manifest, rng)),
                    ),
                )

        self._transaction(work)
        return self.listeners()

    def listeners(self) -> list[Listener]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM listeners ORDER BY name").fetchall()
        return [_listener(row) for row in rows]

    def listener(self, token: str) -> Listener | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM listeners WHERE token = ?", (token,)).fetchone()
        return _listener(row) if row else None

    def submit(self, token: str, trial_id: str, scores: dict[str, float], keep: bool = True) -> int:
        """Record the listener's grades of their current trial and move them on; returns the
        new position. Refuses (:class:`SubmitRefused`, nothing written) a trial that is not
        the listener's current one (an old submit replayed, a trial skipped, an unknown id).
        ``keep`` False (training) records the submission but not the grades."""

        def work(db):
            row = db.execute("SELECT * FROM listeners WHERE token = ?", (token,)).fetchone()
            if row is None:
                raise SubmitRefused(404, "unknown listener")
            listener = _listener(row)
            if listener.done:
                raise SubmitRefused(409, "every trial is already submitted")
            current, order = listener.plan[listener.position]
            if trial_id != current:
                raise SubmitRefused(409, f"trial {trial_id!r} is not the current trial")
            if set(scores) != set(order):
                raise SubmitRefused(422, "the grades must cover exactly the trial's conditions")
            now = time.time()
            db.execute(
                "INSERT INTO submissions VALUES (?, ?, ?, ?)",
                (listener.name, trial_id, listener.position, now),
            )
            if keep:
                db.executemany(
                    "INSERT INTO ratings VALUES (?, ?, ?, ?, ?)",
                    [(listener.name, trial_id, c, float(scores[c]), now) for c in order],
                )
            db.execute("UPDATE listeners SET position = position + 1 WHERE token = ?", (token,))
            return listener.position + 1

        try:
            return self._transaction(work)
        except sqlite3.IntegrityError as error:
            raise SubmitRefused(409, f"already submitted ({error})") from None

    def ratings(self) -> list[dict]:
        """Every kept grade: listener, trial, condition, score, saved (Unix time)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT listener, trial, condition, score, saved FROM ratings "
                "ORDER BY listener, trial, condition"
            ).fetchall()
        return [dict(row) for row in rows]


def _listener(row: sqlite3.Row) -> Listener:
    return Listener(row["token"], row["name"], json.loads(row["plan"]), row["position"])
