"""Catalogue separation on Dask: a local cluster of processes, or an existing scheduler.

Each worker loads the model once, in a worker plugin; tasks are whole files. When a worker
dies, the scheduler reruns its file elsewhere (up to ``distributed.scheduler.allowed-failures``
times); the file's outputs are staged in temporary files, so the dead attempt leaves none.
"""

import os
from collections.abc import Iterable, Iterator

from distributed import Client, LocalCluster, WorkerPlugin, as_completed, get_worker

from .. import SpleeterError
from .job import Job, Outcome, Worker

CONNECT_TIMEOUT = "5s"


class SeparatorPlugin(WorkerPlugin):
    """Loads the model when a worker starts (or joins later) and keeps it for its tasks."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.worker: Worker | None = None

    def setup(self, worker) -> None:  # noqa: ANN001 (distributed.Worker)
        self.worker = Worker(self.job)


def _plugin(name: str) -> tuple[SeparatorPlugin, str]:
    worker = get_worker()
    return worker.plugins[name], worker.address


def _worker_error(name: str, dask_worker) -> str | None:  # noqa: ANN001
    plugin = dask_worker.plugins.get(name)
    return "the separator plugin is missing" if plugin is None else plugin.worker.error


def _separate(filename: str, plugin_name: str) -> Outcome:
    plugin, address = _plugin(plugin_name)
    return plugin.worker.separate(filename, address)


class Backend:
    """Dask as the cluster engine (see :class:`spleeter.batch.backends.Backend`)."""

    def __init__(self, job: Job, workers: int | None, address: str | None) -> None:
        self._cluster: LocalCluster | None = None
        self._name = f"spleeter-{job.key()}"  # runs with other settings get their own plugin
        if address:
            try:
                self._client = Client(address, timeout=CONNECT_TIMEOUT)
            except (OSError, TimeoutError) as error:
                raise SpleeterError(
                    f"cannot reach the Dask scheduler at {address}: {error}"
                ) from None
        else:
            count = workers or 1
            threads = str(max(1, (os.cpu_count() or 1) // count))  # no oversubscribed cores
            self._cluster = LocalCluster(
                n_workers=count,
                threads_per_worker=1,  # one file at a time per worker: one model in memory
                processes=True,
                dashboard_address=None,
                env={"TF_NUM_INTRAOP_THREADS": threads, "OMP_NUM_THREADS": threads},
            )
            self._client = Client(self._cluster)
        if not self._client.scheduler_info()["workers"]:
            self.__exit__()
            raise SpleeterError(f"the Dask scheduler at {address} has no workers")
        self._client.register_plugin(SeparatorPlugin(job), name=self._name)

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *_: object) -> None:
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()

    def worker_errors(self) -> dict[str, str | None]:
        return self._client.run(_worker_error, self._name)

    def retire(self, workers: list[str]) -> None:
        if workers:
            self._client.retire_workers(workers=workers, close_workers=False)

    def separate(self, files: Iterable[str]) -> Iterator[Outcome]:
        files = list(files)
        futures = self._client.map(_separate, files, plugin_name=self._name, pure=False)
        filename = {future.key: file for future, file in zip(futures, files, strict=True)}
        for future in as_completed(futures):
            try:
                yield future.result()
            except Exception as error:  # a file whose workers kept dying, a worker gone bad
                yield Outcome(filename[future.key], "", error=f"{type(error).__name__}: {error}")
            future.release()
