"""The supervised separation task (``spleeter train``): mixture magnitude in, stems as targets.

Each step runs the model in training mode (batch norm on batch statistics, updating its moving
statistics; dropout active) and sums the per-instrument losses of ``loss_type`` (or minimises
the architecture's declared objective: deep clustering for an embedding network). The batches come
from upstream's CSV datasets (:mod:`spleeter.dataset`), from any step on.
"""

import os
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import tensorflow as tf

from ..audio.adapter import AudioAdapter
from ..dataset import training_stream, validation_stream
from ..model import architecture, build_model, initialize_pretrained, model_type
from ..model.checkpoint import find_checkpoint
from ..model.description import describe_model
from ..model.provider import ModelProvider
from ..utils.logging import logger
from . import checkpointing
from .loop import LoopSettings, run_task
from .objectives import OBJECTIVES, auxiliary_losses, loss_function
from .optimizers import optimizer_settings, warn_of_ignored_keys
from .precision import active_dtype
from .settings import TrainingSettings


class SeparationTask:
    """Trains a configuration's separator on the stems of a CSV dataset."""

    def __init__(
        self,
        params: dict[str, Any],
        settings: TrainingSettings,
        audio_adapter: AudioAdapter,
        data_path: str,
    ) -> None:
        self.params = params
        self.settings = settings
        self.audio_adapter = audio_adapter
        self.data_path = data_path
        self.description = f"Training {model_type(params)}"
        self.has_validation = bool(params.get("validation_csv"))
        self._loss = loss_function(params)
        self._input = f"{params['mix_name']}_spectrogram"
        self._auxiliary = architecture(params).auxiliary_losses(params)
        self._objective = OBJECTIVES[architecture(params).objective]

    def build(self) -> Any:
        return build_model(self.params, auxiliary=True)

    def initialize(self, model: Any) -> None:
        """Layers with pretrained weights of their own load them (the SSL encoder's
        ``encoder_dir``), then ``--init-from``'s weights, if any."""
        for description in initialize_pretrained(model):
            logger.info(f"Initialised {description}")
        if self.settings.init_from:
            source = find_checkpoint(ModelProvider.default().get(self.settings.init_from))
            checkpointing.initialize(source, model, architecture(self.params).initialised_apart)
            logger.info(f"Initialised the weights from {source}")

    def batches(self, step: int) -> Iterator[Any]:
        stream = training_stream(self.params, self.audio_adapter, self.data_path)
        return stream.batches(self.settings.batch_size, step * self.settings.batch_size)

    def losses(self, model: Any, batch: Any, training: bool) -> dict[str, Any]:
        features, labels = batch
        mixture = features[self._input]
        outputs = model(mixture, training=training)
        losses = self._objective(outputs, labels, mixture, self._loss)
        losses |= auxiliary_losses(outputs, labels, mixture, self._auxiliary)
        return {"loss": tf.add_n(list(losses.values())), **losses}

    def validation_batches(self) -> Iterator[Any] | None:
        if not self.has_validation:
            return None
        stream = validation_stream(self.params, self.audio_adapter, self.data_path)
        return stream.batches(self.settings.batch_size, 0, len(stream))

    def describe(self, checkpoint: str, step: int) -> dict[str, Any]:
        training = {
            "command": "train",
            "step": step,
            "max_steps": self.settings.max_steps,
            "data": os.path.abspath(self.data_path),
            "batch_size": self.settings.batch_size,
            "seed": self.settings.random_seed,
            "mixed_precision": active_dtype(),  # the compute dtype that ran
            "init_from": self.settings.init_from,
            "optimizer": asdict(optimizer_settings(self.params)),
        }
        return describe_model(self.params, checkpoint, training)


def loop_settings(params: dict[str, Any], settings: TrainingSettings) -> LoopSettings:
    """The loop's settings for a separation configuration."""
    warn_of_ignored_keys(params)
    return LoopSettings(
        model_dir=settings.model_dir,
        max_steps=settings.max_steps,
        optimizer=optimizer_settings(params),
        save_checkpoints_steps=settings.save_checkpoints_steps,
        save_summary_steps=settings.save_summary_steps,
        throttle_secs=settings.throttle_secs,
        random_seed=settings.random_seed,
        batch_size=settings.batch_size,
        mixed_precision=settings.mixed_precision,
    )


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
    task = SeparationTask(params, settings, audio_adapter, data_path)
    if settings.init_from and checkpointing.latest_checkpoint(settings.model_dir):
        logger.warning(
            f"--init-from {settings.init_from} ignored: {settings.model_dir} already has a "
            "checkpoint to resume from"
        )
    loop = run_task(task, loop_settings(params, settings), strategy, quiet, verbose)
    return loop.step
