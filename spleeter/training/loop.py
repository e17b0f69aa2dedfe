"""The one training loop: every task (supervised separation, masked prediction, ...) runs here.

A :class:`TrainingTask` says what is trained: it builds the network, hands out batches from
any step on, computes the losses of a batch, and may have a validation set. The loop owns
everything else, the same for every task: the optimizer (:mod:`.optimizers`), mixed precision,
the distribution strategy, TF1-format checkpoints (one at step 0 of a fresh run, every
``save_checkpoints_steps``, at the end and on Ctrl-C), each described by the folder's
``model.json``, exact resume (weights, optimizer, random
states, position in the data), validation after a checkpoint once ``throttle_secs`` have passed
(always at the end, as upstream's ``train_and_evaluate``), progress and TensorBoard summaries.
"""

import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import keras
import numpy as np
import tensorflow as tf

from .. import SpleeterError
from ..model.description import write_model_description
from ..model.provider import ModelProvider
from ..utils.logging import logger
from . import checkpointing
from .optimizers import OptimizerSettings, build_optimizer
from .precision import active_dtype, precision_policy
from .progress import Progress
from .strategies import agree_on_start, is_chief, select_strategy
from .summaries import Summaries


class TrainingTask(Protocol):
    """What one kind of training trains; the loop does the rest."""

    description: str
    """Names the run in log lines, e.g. ``Training unet.unet``."""
    has_validation: bool
    """Whether :meth:`validation_batches` gives a validation set."""

    def build(self) -> Any:
        """The Keras model to train (called once, under the strategy and precision policy)."""
        ...

    def initialize(self, model: Any) -> None:
        """Initial weights of a fresh run (pretrained parts, ``--init-from``): none to keep
        the builder's."""
        ...

    def batches(self, step: int) -> Iterator[Any]:
        """Numpy batches from the one of step ``step`` on (a resumed run continues exactly)."""
        ...

    def losses(self, model: Any, batch: Any, training: bool) -> dict[str, Any]:
        """The batch's losses as tensors; ``loss`` is the objective (traced in a tf.function)."""
        ...

    def validation_batches(self) -> Iterator[Any] | None:
        """The validation set's batches, or None without one."""
        ...

    def describe(self, checkpoint: str, step: int) -> dict[str, Any]:
        """The model folder's ``model.json`` once ``checkpoint`` (step ``step``) is saved
        (see :func:`spleeter.model.description.describe_model`)."""
        ...


@dataclass(frozen=True)
class LoopSettings:
    """Everything the loop needs besides the task."""

    model_dir: str
    max_steps: int
    optimizer: OptimizerSettings = field(default_factory=OptimizerSettings)
    save_checkpoints_steps: int = 1000
    save_summary_steps: int = 100
    throttle_secs: float = 600.0
    random_seed: int = 0
    batch_size: int = 8
    mixed_precision: str | None = None
    """None (float32), ``auto`` or a compute dtype (see :mod:`.precision`)."""
    progress_label: str = "Training"


class TrainingLoop:
    """Trains a task's model into ``settings.model_dir``; :meth:`run` does the whole job."""

    def __init__(
        self,
        task: TrainingTask,
        settings: LoopSettings,
        strategy: Any = None,
        quiet: bool = False,
        verbose: bool = False,
    ) -> None:
        self.task = task
        self.settings = settings
        self.quiet = quiet
        self.verbose = verbose
        self.history: list[float] = []
        """Training losses of the steps of this run."""
        self.step = 0
        """The step reached (once :meth:`run` returned)."""
        self.strategy = strategy or select_strategy()
        if strategy is not None:
            logger.info(
                f"Training with {type(strategy).__name__} "
                f"({strategy.num_replicas_in_sync} replica(s))"
            )
        self.chief = is_chief(self.strategy)
        """Whether this process writes the run's files (all but a multi-worker run's other
        workers, which write theirs into a scratch directory deleted afterwards)."""
        self._scratch = None if self.chief else tempfile.TemporaryDirectory(prefix="spleeter-")
        replicas = self.strategy.num_replicas_in_sync
        if settings.batch_size < replicas:
            raise SpleeterError(
                f"batch_size ({settings.batch_size}) must be at least the number of replicas "
                f"({replicas})"
            )
        keras.utils.set_random_seed(settings.random_seed)
        with self.strategy.scope():
            self.model = task.build()
            optimizer = build_optimizer(settings.optimizer)
            # float16 underflows small gradients; bfloat16 has float32's range
            self.loss_scaling = active_dtype() == "float16"
            if self.loss_scaling:
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
            self.optimizer = optimizer
            self.optimizer.build(self.model.trainable_variables)
        self._train_step = tf.function(self._distributed_step)
        self._validation_step = tf.function(self._evaluate, reduce_retracing=True)
        self._last_validation: float | None = None

    # -- state ---------------------------------------------------------------------------

    def initial_step(self) -> int:
        """Resume from ``model_dir``'s latest checkpoint, else initialise the task's weights
        and write step 0; return the step to start from."""
        prefix = checkpointing.latest_checkpoint(self.settings.model_dir)
        step = -1
        if prefix is not None:
            step = checkpointing.restore(prefix, self.model, self.optimizer)
        agree_on_start(self.strategy, step)
        if prefix is not None:
            logger.info(f"Resuming from {prefix} (step {step})")
            return step
        self.task.initialize(self.model)
        self.save(0)
        return 0

    def save(self, step: int) -> None:
        """Write checkpoint ``step`` and describe the folder (``model.json``) as holding it."""
        if self._scratch is not None:
            self._save_on_worker(step)
            return
        prefix = checkpointing.save(self.settings.model_dir, self.model, self.optimizer, step)
        write_model_description(self.settings.model_dir, self.task.describe(prefix, step))
        logger.info(f"Saved checkpoint {prefix}")

    def _save_on_worker(self, step: int) -> None:
        """A multi-worker run's worker other than the chief saves as the chief does (the same
        reads of the variables, whatever the strategy needs for them) into its scratch
        directory: only the chief's checkpoints are the run's."""
        checkpointing.save(self._scratch.name, self.model, self.optimizer, step)

    # -- steps ---------------------------------------------------------------------------

    def _replica_step(self, batch: Any) -> dict[str, Any]:
        replicas = self.strategy.num_replicas_in_sync
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            losses = self.task.losses(self.model, batch, training=True)
            objective = losses["loss"] / replicas
            if self.loss_scaling:
                objective = self.optimizer.scale_loss(objective)
        gradients = tape.gradient(objective, variables)
        self.optimizer.apply_gradients(zip(gradients, variables, strict=True))
        return losses

    def _distributed_step(self, batch: Any) -> dict[str, Any]:
        losses = self.strategy.run(self._replica_step, args=(batch,))
        mean = tf.distribute.ReduceOp.MEAN
        return {name: self.strategy.reduce(mean, v, axis=None) for name, v in losses.items()}

    def _distribute(self, batch: Any) -> Any:
        """A numpy batch as tensors, split across the replicas when there are several."""
        replicas = self.strategy.num_replicas_in_sync
        if replicas == 1:
            return tf.nest.map_structure(tf.convert_to_tensor, batch)

        def replica_values(context: Any) -> Any:
            index = context.replica_id_in_sync_group
            return tf.nest.map_structure(
                lambda array: tf.convert_to_tensor(np.array_split(array, replicas)[index]), batch
            )

        return self.strategy.experimental_distribute_values_from_function(replica_values)

    def _evaluate(self, batch: Any) -> dict[str, Any]:
        return self.task.losses(self.model, batch, training=False)

    def validate(self, step: int) -> dict[str, float] | None:
        """Mean validation losses (None when the task has no validation set)."""
        batches = self.task.validation_batches()
        if batches is None:
            return None
        sums: dict[str, float] = {}
        count = 0
        for batch in batches:
            values = self._validation_step(tf.nest.map_structure(tf.convert_to_tensor, batch))
            for name, value in values.items():
                sums[name] = sums.get(name, 0.0) + float(value)
            count += 1
        self._last_validation = time.monotonic()
        if not count:
            logger.warning("Validation set gave no example")
            return None
        losses = {name: value / count for name, value in sums.items()}
        details = ", ".join(f"{k} {v:.6g}" for k, v in losses.items() if k != "loss")
        logger.info(f"Validation at step {step}: loss {losses['loss']:.6g} ({details})")
        return losses

    def _validation_due(self) -> bool:
        if self._last_validation is None:
            return True
        return time.monotonic() - self._last_validation >= self.settings.throttle_secs

    # -- loop ----------------------------------------------------------------------------

    def run(self) -> int:
        """Train up to ``max_steps``; return the final step."""
        settings = self.settings
        step = self.step = self.initial_step()
        parameters = sum(int(np.prod(v.shape)) for v in self.model.trainable_variables)
        if step >= settings.max_steps:
            logger.info(f"{settings.model_dir} is already trained to step {step}: nothing to do")
            if self.chief:
                ModelProvider.writeProbe(settings.model_dir)
            return step
        logger.info(
            f"{self.task.description} ({parameters:,} parameters) from step {step} to "
            f"{settings.max_steps}, batches of {settings.batch_size}, into {settings.model_dir}"
        )
        batches = self.task.batches(step)
        summaries = Summaries(
            settings.model_dir if self._scratch is None else self._scratch.name,
            settings.save_summary_steps,
            self.task.has_validation,
        )
        progress = Progress(
            step, settings.max_steps, self.quiet, self.verbose, settings.progress_label
        )
        saved = step
        try:
            with progress.logging_above():
                while step < settings.max_steps:
                    values = self._train_step(self._distribute(next(batches)))
                    step = self.step = step + 1
                    losses = {name: float(value) for name, value in values.items()}
                    if not np.isfinite(losses["loss"]):
                        logger.warning(f"Step {step}: the loss is {losses['loss']}")
                    self.history.append(losses["loss"])
                    progress.update(step, losses["loss"])
                    summaries.add(step, losses, progress.rate(step))
                    if step % settings.save_checkpoints_steps == 0 or step == settings.max_steps:
                        self.save(step)
                        saved = step
                        due = step == settings.max_steps or self._validation_due()
                        if due and self.chief:
                            validation = self.validate(step)
                            if validation is not None:
                                summaries.validation(step, validation)
        except KeyboardInterrupt:
            if step != saved:
                logger.warning(f"Interrupted: saving step {step} to resume from later")
                self.save(step)
            raise
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()
            progress.close()
            summaries.close()
        if self.chief:
            ModelProvider.writeProbe(settings.model_dir)
        logger.info(f"{self.task.description} done ({progress.rate(step):.3g} steps/s)")
        return step


def run_task(
    task: TrainingTask,
    settings: LoopSettings,
    strategy: Any = None,
    quiet: bool = False,
    verbose: bool = False,
) -> TrainingLoop:
    """Train ``task`` to ``settings.max_steps`` (the model built and trained under the
    precision policy); return the loop (its model, optimizer and history)."""
    with precision_policy(settings.mixed_precision):
        loop = TrainingLoop(task, settings, strategy, quiet, verbose)
        loop.run()
    return loop
