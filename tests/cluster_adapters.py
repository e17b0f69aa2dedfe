"""Audio adapters that misbehave on cluster workers, for tests/test_batch_cluster.py.

Workers import them by dotted path (``--adapter cluster_adapters.KillingAdapter``), so the
tests directory is put on the workers' PYTHONPATH.
"""

import multiprocessing
import os
from typing import Any

from spleeter import SpleeterError
from spleeter.audio.ffmpeg import FFMPEGProcessAudioAdapter

KILL_MARKER = "SPLEETER_TEST_KILL_MARKER"
"""Environment variable: the file whose absence makes a worker die (it is created first)."""


class _DyingWriter:
    """A writer whose first ``write`` kills its process, once per marker file."""

    def __init__(self, writer: Any) -> None:
        self._writer = writer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._writer, name)

    def write(self, samples: Any) -> None:
        self._writer.write(samples)  # a partial temporary file exists now
        marker = os.environ[KILL_MARKER]
        if not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(9)  # as a killed worker: no cleanup, no exception, no goodbye


class KillingAdapter(FFMPEGProcessAudioAdapter):
    """Kills the worker in the middle of writing the first file whose name has ``victim``."""

    def open_writer(self, path: Any, *arguments: Any, **keywords: Any) -> Any:
        writer = super().open_writer(path, *arguments, **keywords)
        return _DyingWriter(writer) if "victim" in str(path) else writer


BROKEN_MARKER = "SPLEETER_TEST_BROKEN_MARKER"
"""Environment variable: the file the first worker to set up ``BrokenOnOneWorkerAdapter``
creates, failing; the other workers find it and work."""


class BrokenOnOneWorkerAdapter(FFMPEGProcessAudioAdapter):
    """Cannot be set up on the first worker process that tries (as a worker without ffmpeg or
    without the model's files would): that worker cannot load the model, the others can."""

    def __init__(self, *arguments: Any, **keywords: Any) -> None:
        super().__init__(*arguments, **keywords)
        if multiprocessing.parent_process() is None:
            return  # the driver (pytest), not a worker process
        try:
            os.close(os.open(os.environ[BROKEN_MARKER], os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
        raise SpleeterError("ffmpeg is broken on this worker (test)")
