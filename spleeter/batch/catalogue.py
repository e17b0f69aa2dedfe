"""Separating a catalogue on a cluster: the manifest, one progress bar, a summary.

The driver decides what to separate (inputs not already done with the same settings), hands
whole files to the engine's workers, and records each outcome in the manifest as it arrives.
"""

import glob
import os
import sys
import time

from .. import SpleeterError
from ..separator import Separator
from ..utils.logging import logger
from .backends import open_backend
from .job import Job, absolute_job
from .manifest import Manifest


def separate_catalogue(
    job: Job,
    files: list[str],
    backend: str = "dask",
    workers: int | None = None,
    address: str | None = None,
    show_progress: bool = True,
) -> int:
    """Separate ``files`` with ``job`` on a cluster; return how many failed (files, and
    workers that could not load the model: the others separated their share).

    ``workers`` local worker processes are started, or the cluster at ``address`` is used. A
    re-run skips inputs done with the same settings (``.spleeter-manifest.sqlite`` in the
    output folder) and retries the others.

    Raises:
        SpleeterError: the cluster cannot be reached, or no worker can load the model.
    """
    job = absolute_job(job)
    files = [os.path.abspath(path) for path in files]
    # builds no model: the driver only needs the output names (and collisions between them)
    separator = Separator(job.params_descriptor, MWF=job.mwf, multiprocess=False)
    outputs = {
        file: separator.output_paths(file, job.output_path, job.filename_format, job.codec)
        for file in files
    }
    collisions, files = _without_collisions(outputs)
    failures = broken = 0
    os.makedirs(job.output_path, exist_ok=True)
    settings = job.settings()
    start = time.perf_counter()
    with Manifest(job.output_path) as manifest:
        todo = [file for file in files if not manifest.is_done(file, settings)]
        if len(todo) < len(files):
            logger.info(f"Skipping {len(files) - len(todo)} file(s) done in an earlier run")
        _remove_temporaries(outputs, todo)  # left by workers killed in an earlier run
        if todo:
            with open_backend(backend, job, workers, address) as cluster:
                broken = _drop_broken_workers(cluster)
                for file in todo:
                    manifest.start(file, settings)
                failures += _run(cluster, todo, manifest, show_progress)
            _remove_temporaries(outputs, todo)  # workers killed in this one
    elapsed = time.perf_counter() - start
    done = len(todo) - failures
    rate = f", {60 * done / elapsed:.1f} files/min" if done else ""
    workers = f", {broken} worker(s) could not load the model" if broken else ""
    logger.info(
        f"Separated {done} file(s), skipped {len(files) - len(todo)}, failed "
        f"{failures + collisions}{workers} in {elapsed:.1f} s{rate} (manifest: {manifest.path})"
    )
    return failures + collisions + broken


def _without_collisions(outputs: dict[str, dict[str, str]]) -> tuple[int, list[str]]:
    """Inputs whose outputs no earlier input writes; the others are reported as failures."""
    claimed: dict[str, str] = {}
    kept: list[str] = []
    for file, paths in outputs.items():
        taken = [path for path in paths.values() if path in claimed]
        if taken:
            logger.error(
                f"{file}: its output {taken[0]} is also the output of {claimed[taken[0]]}; "
                "use {foldername} in --filename_format to tell them apart"
            )
            continue
        claimed.update(dict.fromkeys(paths.values(), file))
        kept.append(file)
    return len(outputs) - len(kept), kept


def _drop_broken_workers(cluster) -> int:  # noqa: ANN001 (a Backend)
    """Report workers that could not load the model and take them out; fail if none can.
    Return how many could not."""
    errors = cluster.worker_errors()
    broken = {worker: error for worker, error in errors.items() if error}
    for worker, error in broken.items():
        logger.error(f"worker {worker}: {error}")
    if len(broken) == len(errors):
        raise SpleeterError("no worker could load the model: nothing was separated")
    cluster.retire(list(broken))
    return len(broken)


def _run(cluster, todo: list[str], manifest: Manifest, show_progress: bool) -> int:  # noqa: ANN001
    """Hand ``todo`` to the cluster; record and report each outcome; count the failures."""
    from tqdm import tqdm

    failures = 0
    enabled = show_progress and sys.stderr.isatty()
    with tqdm(total=len(todo), unit="file", file=sys.stderr, disable=not enabled) as bar:
        for outcome in cluster.separate(todo):
            manifest.finish(outcome)
            if outcome.error:
                failures += 1
                logger.error(
                    outcome.error
                    if outcome.filename in outcome.error
                    else f"{outcome.filename}: {outcome.error}"
                )
            bar.update(1)
    return failures


def _remove_temporaries(outputs: dict[str, dict[str, str]], files: list[str]) -> None:
    """Delete the hidden ``.NAME.part-*`` files a killed worker left next to ``files``' outputs
    (run only while no worker of this run writes)."""
    for file in files:
        for path in outputs[file].values():
            directory, name = os.path.split(path)
            stem, extension = os.path.splitext(name)
            pattern = os.path.join(
                glob.escape(directory), f".{glob.escape(stem)}.part-*{extension}"
            )
            for temporary in glob.glob(pattern):
                os.remove(temporary)
