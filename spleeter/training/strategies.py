"""The ``tf.distribute`` strategies ``spleeter train --strategy`` runs under, built in one place.

* ``auto``: ``MirroredStrategy`` over all GPUs when there are several, else the default strategy
  (one device).
* ``default``: the default strategy (one device: the first GPU, else the CPU).
* ``mirrored``: ``MirroredStrategy`` over all GPUs, or over all logical CPU devices when there
  is no GPU (one replica unless the process split its CPU with
  ``tf.config.set_logical_device_configuration``).
* ``multiworker``: ``MultiWorkerMirroredStrategy`` over the machines of the ``TF_CONFIG``
  environment variable (:func:`check_tf_config` refuses a missing or malformed one before any
  work). Only the chief writes checkpoints, summaries and ``.probe`` (:func:`is_chief`).

Whatever the strategy, ``batch_size`` is the global batch, split across all replicas.
"""

import json
import os
from typing import Any

from .. import SpleeterError
from ..utils.logging import logger

STRATEGIES = ("auto", "default", "mirrored", "multiworker")
"""The values of ``--strategy``."""

TF_CONFIG = "TF_CONFIG"
"""The environment variable describing the cluster of a multi-worker run."""

TF_CONFIG_EXAMPLE = (
    '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
    '"task": {"type": "worker", "index": 0}}'
)


def check_tf_config(environ: Any = None) -> dict[str, Any]:
    """The parsed ``TF_CONFIG`` of a multi-worker run (no TensorFlow needed).

    Raises:
        SpleeterError: ``TF_CONFIG`` is absent or is not a cluster of ``host:port`` addresses
            with this process's task (``type`` one of the cluster's jobs, ``index`` in range).
    """
    value = (os.environ if environ is None else environ).get(TF_CONFIG)
    hint = f"(e.g. {TF_CONFIG}='{TF_CONFIG_EXAMPLE}'; see docs/training.md)"
    if not value or not value.strip():
        raise SpleeterError(
            f"--strategy multiworker needs the {TF_CONFIG} environment variable: the cluster "
            f"and this worker's task {hint}"
        )
    try:
        config = json.loads(value)
    except ValueError as error:
        raise SpleeterError(f"{TF_CONFIG} is not valid JSON ({error}) {hint}") from None
    problem = _tf_config_problem(config)
    if problem:
        raise SpleeterError(f"{TF_CONFIG} is malformed: {problem} {hint}")
    return config


def _tf_config_problem(config: Any) -> str | None:
    """What is wrong with a parsed ``TF_CONFIG``, or None."""
    if not isinstance(config, dict):
        return "not a JSON object"
    cluster, task = config.get("cluster"), config.get("task")
    if not isinstance(cluster, dict) or not cluster:
        return 'no "cluster" object'
    for job, addresses in cluster.items():
        if not isinstance(addresses, list) or not addresses:
            return f'cluster job "{job}" is not a list of addresses'
        for address in addresses:
            host, _, port = str(address).rpartition(":")
            if not isinstance(address, str) or not host or not port.isdigit():
                return f'cluster job "{job}" has {address!r}, not a "host:port" address'
    if not {"worker", "chief"} & set(cluster):
        return 'the cluster has no "worker" (or "chief") job'
    if not isinstance(task, dict):
        return 'no "task" object (this process\'s "type" and "index")'
    job, index = task.get("type"), task.get("index")
    if job not in cluster:
        return f"task type {job!r} is not a job of the cluster ({', '.join(cluster)})"
    if isinstance(index, bool) or not isinstance(index, int):
        return f"task index {index!r} is not an integer"
    if not 0 <= index < len(cluster[job]):
        return f'task index {index} is out of range for the {len(cluster[job])} "{job}" task(s)'
    return None


def check(name: str) -> None:
    """Refuse an unknown strategy, or ``multiworker`` without a usable ``TF_CONFIG``, before
    any work (no TensorFlow import)."""
    if name not in STRATEGIES:
        raise SpleeterError(f"Unknown strategy {name!r}: use one of {', '.join(STRATEGIES)}")
    if name == "multiworker":
        check_tf_config()


def select_strategy() -> Any:
    """``MirroredStrategy`` over all GPUs when there are several, else the default strategy."""
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        strategy = tf.distribute.MirroredStrategy()
        logger.info(f"Training with MirroredStrategy on {len(gpus)} GPUs")
        return strategy
    logger.info(f"Training on {'GPU ' + gpus[0].name if gpus else 'the CPU'} (default strategy)")
    return tf.distribute.get_strategy()


def make_strategy(name: str) -> Any:
    """The strategy ``--strategy name`` trains under (see the module's documentation)."""
    check(name)
    import tensorflow as tf

    if name == "auto":
        return select_strategy()
    if name == "default":
        gpus = tf.config.list_logical_devices("GPU")
        where = f"GPU {gpus[0].name}" if gpus else "the CPU"
        logger.info(f"Training on {where} (default strategy)")
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        if gpus:
            devices = [device.name for device in gpus]
            logger.info(f"Training with MirroredStrategy on {len(gpus)} GPU(s)")
        else:
            devices = [device.name for device in tf.config.list_logical_devices("CPU")]
            logger.info(
                f"Training with MirroredStrategy on {len(devices)} logical CPU device(s): "
                "there is no GPU"
            )
        return tf.distribute.MirroredStrategy(devices)
    config = check_tf_config()
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    task = config["task"]
    role = "the chief" if is_chief(strategy) else "not the chief: no checkpoint written here"
    logger.info(
        f"Training with MultiWorkerMirroredStrategy: {task['type']} {task['index']} of "
        f"{sum(len(a) for a in config['cluster'].values())} task(s), "
        f"{strategy.num_replicas_in_sync} replica(s) in all ({role})"
    )
    return strategy


def is_multi_worker(strategy: Any) -> bool:
    """Whether ``strategy`` spans several processes (a ``TF_CONFIG`` cluster)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    return resolver is not None and bool(resolver.cluster_spec().as_dict())


def is_chief(strategy: Any) -> bool:
    """Whether this process writes the run's files: always, except on the workers of a
    multi-worker cluster other than its chief (the ``chief`` task, else worker 0)."""
    if not is_multi_worker(strategy):
        return True
    resolver = strategy.cluster_resolver
    if resolver.task_type in (None, "chief"):
        return True
    jobs = resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in jobs


def agree_on_start(strategy: Any, step: int) -> None:
    """Check that every worker of a multi-worker run starts from the same step (they all read
    the chief's checkpoint, so ``model_dir`` must be shared); a no-op otherwise.

    Raises:
        SpleeterError: the workers found different checkpoints (on every worker, so that none
            waits for the others forever).
    """
    if not is_multi_worker(strategy):
        return
    import tensorflow as tf

    def values() -> Any:
        return tf.constant([float(step), float(step) ** 2], dtype=tf.float64)

    total = strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(values), axis=None)
    total, squares = (float(v) for v in total.numpy())
    replicas = strategy.num_replicas_in_sync
    if abs(replicas * squares - total**2) > 0.5:
        raise SpleeterError(
            f"The workers start from different steps (this one from {step}, the mean is "
            f"{total / replicas:g}): model_dir must be a directory every worker sees (shared "
            "storage), holding the chief's checkpoints"
        )
