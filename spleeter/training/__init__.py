"""Training a separation model (``spleeter train``).

:func:`run_training` is the whole command: it validates the configuration, checks every row of
the dataset (before TensorFlow is even imported, so that a bad dataset fails in seconds), then
trains with :mod:`spleeter.training.loop`. Modules: ``settings`` (configuration keys),
``checks`` (dataset check), ``objectives`` (losses), ``optimizers``, ``checkpointing``
(TF1-format save/resume), ``strategies`` (``--strategy``: the ``tf.distribute`` strategy),
``progress`` and ``summaries`` (reporting), ``loop`` (the one training loop, shared by every
task) and ``separation`` (the supervised separation task).
"""

import os
from typing import Any

from .. import SpleeterError
from ..audio.adapter import AudioAdapter
from ..dataset import VALIDATION_CHUNK_DURATION, DatasetBuilder, resolve_csv_paths
from .checks import check_dataset
from .settings import training_settings
from .strategies import check as check_strategy
from .strategies import make_strategy


def run_training(
    params: dict[str, Any],
    data_path: str,
    audio_adapter: AudioAdapter,
    *,
    max_steps: int | None = None,
    seed: int | None = None,
    mixed_precision: bool | str | None = None,
    init_from: str | None = None,
    quiet: bool = False,
    verbose: bool = False,
    strategy: Any = None,
) -> int:
    """Check the configuration and the dataset, then train; return the final step.

    ``strategy`` is a ``--strategy`` name (``auto``, ``default``, ``mirrored``,
    ``multiworker``: see :mod:`.strategies`), a ``tf.distribute`` strategy, or None (``auto``).

    Raises:
        SpleeterError: an unknown strategy or, for ``multiworker``, a missing or malformed
            ``TF_CONFIG`` (before anything else); unusable configuration or dataset (every bad
            row listed), unreadable checkpoint, or an ``--init-from`` model that does not fit
            the configuration.
    """
    if isinstance(strategy, str):
        check_strategy(strategy)
    settings, params = training_settings(
        params,
        max_steps=max_steps,
        seed=seed,
        mixed_precision=mixed_precision,
        init_from=init_from,
    )
    if not os.path.isdir(data_path):
        raise SpleeterError(f"Data directory {data_path} does not exist")
    params = resolve_csv_paths(params, data_path)
    builder_args = (params, audio_adapter, data_path)
    DatasetBuilder(*builder_args, chunk_duration=params.get("chunk_duration", 20.0))
    if params.get("validation_csv"):
        DatasetBuilder(*builder_args, chunk_duration=VALIDATION_CHUNK_DURATION)
    check_dataset(params, data_path)
    from ..engines.tensorflow import import_tensorflow

    import_tensorflow()
    from .separation import train

    if isinstance(strategy, str):
        strategy = make_strategy(strategy)
    return train(params, settings, audio_adapter, data_path, quiet, verbose, strategy)


__all__ = ["run_training"]
