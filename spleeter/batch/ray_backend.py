"""Catalogue separation on Ray: one actor per worker, each holding a loaded model.

A killed actor is restarted (its model loaded again) and its file retried on it, up to
:data:`RETRIES` times; outputs are staged in temporary files, so a dead attempt leaves none.
"""

import os
import socket
from collections.abc import Iterable, Iterator

import ray
from ray.exceptions import RayActorError, RayError
from ray.util import ActorPool

from .. import SpleeterError
from .job import Job, Outcome, Worker

RETRIES = 3


class _Separator:
    """The actor: a :class:`Worker` that never raises for a file (errors are outcomes)."""

    def __init__(self, job: Job) -> None:
        self.worker = Worker(job)
        self.name = f"{ray.util.get_node_ip_address()}/{os.getpid()}"

    def error(self) -> str | None:
        return self.worker.error

    def separate(self, filename: str) -> Outcome:
        try:
            return self.worker.separate(filename, self.name)
        except SpleeterError as error:
            return Outcome(filename, self.name, error=str(error))


def _check_reachable(address: str) -> None:
    """Fail at once on a ``host:port`` nobody answers (``ray.init`` would retry for minutes)."""
    host, _, port = address.split("://")[-1].rpartition(":")
    if not host or not port.isdigit():
        return  # "auto" and the like: left to Ray
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as error:
        raise SpleeterError(f"cannot reach the Ray cluster at {address}: {error}") from None


class Backend:
    """Ray as the cluster engine (see :class:`spleeter.batch.backends.Backend`)."""

    def __init__(self, job: Job, workers: int | None, address: str | None) -> None:
        if address:
            _check_reachable(address)
        try:
            ray.init(
                address=address,
                num_cpus=None if address else workers or 1,
                include_dashboard=False,
                logging_level="ERROR",
                log_to_driver=False,
            )
        except (ConnectionError, RayError, ValueError) as error:
            raise SpleeterError(f"cannot reach the Ray cluster at {address}: {error}") from None
        count = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        options = {"max_restarts": RETRIES, "max_task_retries": RETRIES, "num_cpus": 1}
        if job.device == "cuda":  # more workers than GPUs share them: a fraction of one each
            gpus = ray.cluster_resources().get("GPU", 0)
            if not gpus:
                ray.shutdown()
                raise SpleeterError("--device cuda: the Ray cluster has no GPU")
            options["num_gpus"] = min(1.0, gpus / count)
        actor = ray.remote(_Separator).options(**options)
        self._actors = {f"actor-{k}": actor.remote(job) for k in range(count)}

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *_: object) -> None:
        ray.shutdown()

    def worker_errors(self) -> dict[str, str | None]:
        names = list(self._actors)
        errors = ray.get([self._actors[name].error.remote() for name in names])
        return dict(zip(names, errors, strict=True))

    def retire(self, workers: list[str]) -> None:
        for name in workers:
            ray.kill(self._actors.pop(name))

    def separate(self, files: Iterable[str]) -> Iterator[Outcome]:
        files = list(files)
        pool = ActorPool(list(self._actors.values()))
        for filename in files:
            pool.submit(lambda actor, name: actor.separate.remote(name), filename)
        pending = set(files)
        while pool.has_next():
            try:
                outcome = pool.get_next_unordered()
            except RayActorError:  # a file whose worker died RETRIES times: reported below
                continue
            pending.discard(outcome.filename)
            yield outcome
        for filename in sorted(pending):
            yield Outcome(filename, "", error=f"{filename}: its Ray worker died {RETRIES} times")
