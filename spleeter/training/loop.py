"""The training loop: Keras 3 model, ``tf.data`` input, TF1-format checkpoints.

Each step runs the model in training mode (batch norm on batch statistics, updating its moving
statistics; dropout active), sums the per-instrument losses and applies the optimizer. A
checkpoint is written at step 0 of a fresh run, every ``save_checkpoints_steps`` and at the end;
after a checkpoint the validation loss is computed if ``throttle_secs`` have passed since the
previous validation (always at the end), as upstream's ``train_and_evaluate`` did. A run that
finds a checkpoint in ``model_dir`` resumes from it: weights, optimizer, random states and
position in the data stream.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from .. import SpleeterError
from ..audio.adapter import AudioAdapter
from ..dataset import training_stream, validation_stream
from ..model import build_model, initialize_pretrained, model_type
from ..model.checkpoint import find_checkpoint
from ..model.provider import ModelProvider
from ..utils.logging import logger
from . import checkpointing
from .objectives import build_optimizer, instrument_losses, loss_function
from .progress import Progress
from .settings import TrainingSettings
from .summaries import Summaries


def select_strategy() -> Any:
    """``MirroredStrategy`` over all GPUs when there are several, else the default strategy."""
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        strategy = tf.distribute.MirroredStrategy()
        logger.info(f"Training with MirroredStrategy on {len(gpus)} GPUs")
        return strategy
    logger.info(f"Training on {'GPU ' + gpus[0].name if gpus else 'the CPU'} (default strategy)")
    return tf.distribute.get_strategy()


@contextmanager
def precision_policy(mixed: bool) -> Iterator[None]:
    """Build and train under Keras' ``mixed_float16`` policy (restored afterwards)."""
    previous = keras.mixed_precision.global_policy()
    if mixed:
        keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


class Trainer:
    """Trains the model of a configuration on a dataset; :meth:`run` does the whole job."""

    def __init__(
        self,
        params: dict[str, Any],
        settings: TrainingSettings,
        audio_adapter: AudioAdapter,
        data_path: str,
        strategy: Any = None,
        quiet: bool = False,
        verbose: bool = False,
    ) -> None:
        self.params = params
        self.settings = settings
        self.audio_adapter = audio_adapter
        self.data_path = data_path
        self.strategy = strategy or select_strategy()
        if strategy is not None:
            logger.info(
                f"Training with {type(strategy).__name__} "
                f"({strategy.num_replicas_in_sync} replica(s))"
            )
        self.quiet = quiet
        self.verbose = verbose
        self.model_dir = settings.model_dir
        self._loss = loss_function(params)
        self._input = f"{params['mix_name']}_spectrogram"
        keras.utils.set_random_seed(settings.random_seed)
        with self.strategy.scope():
            self.model = build_model(params)
            optimizer = build_optimizer(params)
            if settings.mixed_precision:
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
            self.optimizer = optimizer
            self.optimizer.build(self.model.trainable_variables)
        replicas = self.strategy.num_replicas_in_sync
        if settings.batch_size < replicas:
            raise SpleeterError(
                f"batch_size ({settings.batch_size}) must be at least the number of replicas "
                f"({replicas})"
            )
        self._train_step = tf.function(self._distributed_step)
        self._validation_step = tf.function(self._evaluate, reduce_retracing=True)
        self._last_validation: float | None = None

    # -- state ---------------------------------------------------------------------------

    def initial_step(self) -> tuple[int, bool]:
        """Resume from ``model_dir``'s latest checkpoint, else start afresh: layers with
        pretrained weights of their own load them (the SSL encoder's ``encoder_dir``), then
        ``--init-from``'s weights, if any, are loaded; return the step to start from and
        whether it resumed."""
        prefix = checkpointing.latest_checkpoint(self.model_dir)
        if prefix is not None:
            step = checkpointing.restore(prefix, self.model, self.optimizer)
            logger.info(f"Resuming from {prefix} (step {step})")
            if self.settings.init_from:
                logger.warning(
                    f"--init-from {self.settings.init_from} ignored: {self.model_dir} already "
                    "has a checkpoint to resume from"
                )
            return step, True
        for description in initialize_pretrained(self.model):
            logger.info(f"Initialised {description}")
        if self.settings.init_from:
            directory = ModelProvider.default().get(self.settings.init_from)
            source = find_checkpoint(directory)
            checkpointing.initialize(source, self.model)
            logger.info(f"Initialised the weights from {source}")
        return 0, False

    def save(self, step: int) -> None:
        prefix = checkpointing.save(self.model_dir, self.model, self.optimizer, step)
        logger.info(f"Saved checkpoint {prefix}")

    # -- steps ---------------------------------------------------------------------------

    def _replica_step(self, features: dict, labels: dict) -> tuple[Any, dict]:
        replicas = self.strategy.num_replicas_in_sync
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            outputs = self.model(features[self._input], training=True)
            losses = instrument_losses(outputs, labels, self._loss)
            total = tf.add_n(list(losses.values()))
            objective = total / replicas
            if self.settings.mixed_precision:
                objective = self.optimizer.scale_loss(objective)
        gradients = tape.gradient(objective, variables)
        self.optimizer.apply_gradients(zip(gradients, variables, strict=True))
        return total, losses

    def _distributed_step(self, features: dict, labels: dict) -> tuple[Any, dict]:
        total, losses = self.strategy.run(self._replica_step, args=(features, labels))
        mean = tf.distribute.ReduceOp.MEAN
        return (
            self.strategy.reduce(mean, total, axis=None),
            {name: self.strategy.reduce(mean, v, axis=None) for name, v in losses.items()},
        )

    def _distribute(self, batch: tuple[dict, dict]) -> tuple[Any, Any]:
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

    def _evaluate(self, features: dict, labels: dict) -> dict:
        outputs = self.model(features[self._input], training=False)
        return instrument_losses(outputs, labels, self._loss)

    def validate(self, step: int) -> dict[str, float] | None:
        """Mean validation losses over the validation set (None without ``validation_csv``)."""
        if not self.params.get("validation_csv"):
            return None
        sums: dict[str, float] = {}
        batches = 0
        stream = validation_stream(self.params, self.audio_adapter, self.data_path)
        for features, labels in stream.batches(self.settings.batch_size, 0, len(stream)):
            for name, value in self._validation_step(features, labels).items():
                sums[name] = sums.get(name, 0.0) + float(value)
            batches += 1
        if not batches:
            logger.warning("Validation set gave no example")
            return None
        losses = {name: value / batches for name, value in sums.items()}
        losses["loss"] = float(sum(losses.values()))
        details = ", ".join(f"{k} {v:.6g}" for k, v in losses.items() if k != "loss")
        logger.info(f"Validation at step {step}: loss {losses['loss']:.6g} ({details})")
        self._last_validation = time.monotonic()
        return losses

    def _validation_due(self) -> bool:
        if self._last_validation is None:
            return True
        return time.monotonic() - self._last_validation >= self.settings.throttle_secs

    # -- loop ----------------------------------------------------------------------------

    def run(self) -> int:
        """Train up to ``max_steps``; return the final step."""
        settings = self.settings
        step, resumed = self.initial_step()
        if not resumed:
            self.save(0)
        parameters = sum(int(np.prod(v.shape)) for v in self.model.trainable_variables)
        if step >= settings.max_steps:
            logger.info(f"{self.model_dir} is already trained to step {step}: nothing to do")
            ModelProvider.writeProbe(self.model_dir)
            return step
        logger.info(
            f"Training {model_type(self.params)} ({parameters:,} parameters) from step {step} to "
            f"{settings.max_steps}, batches of {settings.batch_size}, into {self.model_dir}"
        )
        stream = training_stream(self.params, self.audio_adapter, self.data_path)
        batches = stream.batches(settings.batch_size, step * settings.batch_size)
        summaries = Summaries(self.model_dir, settings.save_summary_steps)
        progress = Progress(step, settings.max_steps, self.quiet, self.verbose)
        saved = step
        try:
            with progress.logging_above():
                while step < settings.max_steps:
                    features, labels = self._distribute(next(batches))
                    total, losses = self._train_step(features, labels)
                    step += 1
                    loss = float(total)
                    if not np.isfinite(loss):
                        logger.warning(f"Step {step}: the loss is {loss}")
                    progress.update(step, loss)
                    values = {"loss": loss, **{k: float(v) for k, v in losses.items()}}
                    summaries.add(step, values, progress.rate(step))
                    if step % settings.save_checkpoints_steps == 0 or step == settings.max_steps:
                        self.save(step)
                        saved = step
                        if step == settings.max_steps or self._validation_due():
                            validation = self.validate(step)
                            if validation is not None:
                                summaries.validation(step, validation)
        except KeyboardInterrupt:
            if step != saved:
                logger.warning(f"Interrupted: saving step {step} to resume from later")
                self.save(step)
            raise
        finally:
            batches.close()
            progress.close()
            summaries.close()
        ModelProvider.writeProbe(self.model_dir)
        logger.info(f"Model training done ({progress.rate(step):.3g} steps/s)")
        return step


def train(
    params: dict[str, Any],
    settings: TrainingSettings,
    audio_adapter: AudioAdapter,
    data_path: str,
    quiet: bool = False,
    verbose: bool = False,
    strategy: Any = None,
) -> int:
    """Train ``params``' model on the data under ``data_path``; return the final step."""
    with precision_policy(settings.mixed_precision):
        trainer = Trainer(params, settings, audio_adapter, data_path, strategy, quiet, verbose)
        return trainer.run()
