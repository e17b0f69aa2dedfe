"""A MUSHRA listening test (ITU-R BS.1534-3) of separations: ``spleeter listen``.

- :mod:`.excerpts` finds the reference and system files and picks an excerpt per item;
- :mod:`.loudness` matches loudness (ITU-R BS.1770, pyloudnorm);
- :mod:`.anchors` makes the 3.5 kHz and 7 kHz low-pass anchors;
- :mod:`.prepare` writes a self-contained test folder (audio and :mod:`.manifest`);
- :mod:`.store` keeps listeners and ratings in SQLite (WAL);
- :mod:`.server` serves the page (``static/``) and its API (Starlette under uvicorn);
- :mod:`.report` post-screens listeners and computes the statistics and box plots.
"""

MANIFEST_NAME: str = "manifest.json"
"""The test's description, in the test folder (never served)."""

DATABASE_NAME: str = "results.sqlite"
"""The ratings database, in the test folder (never served)."""

AUDIO_DIRECTORY: str = "audio"
"""Sub-folder of the test folder with the trials' audio: the only files that are served."""

MAX_EXCERPT_SECONDS: float = 12.0
"""BS.1534-3: excerpts of about 10 s, at most 12 s."""

MAX_SIGNALS: int = 12
"""BS.1534-3: at most 12 signals per trial, hidden reference and anchors included."""
