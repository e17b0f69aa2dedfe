"""The pretraining procedure: HuBERT iterations of clustering, then masked prediction.

Iteration ``k`` lives in ``<encoder_dir>/iteration-<k>/``:

1. **Units.** ``units.npz`` is read when present (a resumed run keeps its targets); otherwise
   iteration 1 clusters the MFCCs (or log-mel frames) of the corpus and iteration ``k > 1``
   the hidden state ``layer`` of iteration ``k - 1``'s final encoder, with k-means
   (:mod:`spleeter.ssl.units`).
2. **Masked prediction.** The encoder (from scratch, or from the previous iteration with
   ``init_from_previous``) with a linear head over the units is trained with Adam (HuBERT's
   betas 0.9 / 0.98, epsilon 1e-6, linear warm-up) on the cross-entropy at masked frames (plus
   ``unmasked_weight`` times the cross-entropy at the others), a task on the one training
   loop (:mod:`spleeter.training.loop`). Checkpoints, resume, progress,
   TensorBoard and mixed precision are those of ``spleeter train``
   (:mod:`spleeter.training`): ``model.ckpt-<step>`` every ``save_checkpoints_steps`` and at
   the end, the two latest kept, optimizer and dropout states included, so a resumed run
   continues exactly.
3. **Encoder.** At the end of the iteration, the encoder alone (variables ``ssl_encoder/...``)
   and ``encoder.json`` are written to ``<encoder_dir>``: the directory the fused separator
   loads.

An iteration is done once the next iteration's ``units.npz`` exists (its targets were made from
it); the last iteration resumes up to its ``steps`` on every run.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from ..audio.features import mfcc
from ..model.checkpoint import find_checkpoint, load_checkpoint
from ..model.description import describe_model
from ..model.encoder_config import EncoderConfig
from ..model.encoder_folder import encoder_configuration
from ..model.layers.ssl_encoder import EncoderNetwork
from ..training import checkpointing
from ..training.loop import LoopSettings, run_task
from ..training.optimizers import OptimizerSettings
from ..utils.logging import logger
from .config import IterationSettings, PretrainSettings
from .data import MaskedExamples, PretrainCorpus
from .encoder import (
    ENCODER_JSON,
    EncoderAudio,
    build_pretraining_model,
    variables_view,
    write_encoder,
)
from .units import UNITS_FILENAME, UnitModel, fit_units, sample_frames

ITERATION_PREFIX = "iteration-"


def iteration_dir(encoder_dir: str, index: int) -> Path:
    """Directory of iteration ``index`` (1-based)."""
    return Path(encoder_dir) / f"{ITERATION_PREFIX}{index}"


def iteration_step(encoder_dir: str, index: int) -> int:
    """The global step of iteration ``index``'s latest checkpoint (-1 without one)."""
    prefix = checkpointing.latest_checkpoint(str(iteration_dir(encoder_dir, index)))
    if prefix is None:
        return -1
    reader = tf.train.load_checkpoint(prefix)
    return int(reader.get_tensor("global_step"))


def pending_iterations(settings: PretrainSettings) -> list[int]:
    """The iterations (1-based) that still need units, training or their encoder written."""
    pending = []
    count = len(settings.iterations)
    for index in range(1, count + 1):
        if (
            index < count
            and (iteration_dir(settings.encoder_dir, index + 1) / UNITS_FILENAME).exists()
        ):
            continue
        pending.append(index)
    return pending


def pretraining_done(settings: PretrainSettings) -> bool:
    """Whether every iteration is trained to its steps and the last one's encoder written."""
    import json

    last = len(settings.iterations)
    if pending_iterations(settings) != [last]:
        return False
    step = iteration_step(settings.encoder_dir, last)
    if step < settings.iterations[-1].steps:
        return False
    try:
        written = json.loads((Path(settings.encoder_dir) / ENCODER_JSON).read_text())
    except (OSError, ValueError):
        return False
    return written.get("iteration") == last and written.get("step") == step


def masked_prediction_losses(
    logits: Any, units: Any, mask: Any, unmasked_weight: float
) -> dict[str, Any]:
    """``loss`` (the objective), ``masked_loss``, ``unmasked_loss`` and ``masked_accuracy``."""
    logits = keras.ops.cast(logits, "float32")
    entropy = keras.ops.sparse_categorical_crossentropy(units, logits, from_logits=True)
    masked = keras.ops.cast(mask, "float32")
    unmasked = 1.0 - masked
    masked_count = keras.ops.maximum(keras.ops.sum(masked), 1.0)
    unmasked_count = keras.ops.maximum(keras.ops.sum(unmasked), 1.0)
    masked_loss = keras.ops.sum(entropy * masked) / masked_count
    unmasked_loss = keras.ops.sum(entropy * unmasked) / unmasked_count
    predicted = keras.ops.cast(keras.ops.argmax(logits, axis=-1), units.dtype)
    correct = keras.ops.cast(keras.ops.equal(predicted, units), "float32")
    return {
        "loss": masked_loss + unmasked_weight * unmasked_loss,
        "masked_loss": masked_loss,
        "unmasked_loss": unmasked_loss,
        "masked_accuracy": keras.ops.sum(correct * masked) / masked_count,
    }


class Pretrainer:
    """Runs the pending iterations of a pretraining configuration on a loaded corpus."""

    def __init__(
        self,
        config: EncoderConfig,
        audio: EncoderAudio,
        settings: PretrainSettings,
        corpus: PretrainCorpus,
        quiet: bool = False,
        verbose: bool = False,
    ) -> None:
        self.config = config
        self.audio = audio
        self.settings = settings
        self.corpus = corpus
        self.quiet = quiet
        self.verbose = verbose
        self.history: dict[int, list[float]] = {}
        """Training losses of each iteration's steps in this run."""
        self._frames: dict[int, Any] = {}

    # -- units ----------------------------------------------------------------------------

    def units(self, index: int) -> UnitModel:
        """Iteration ``index``'s unit model, read or fitted (and saved)."""
        directory = iteration_dir(self.settings.encoder_dir, index)
        if (directory / UNITS_FILENAME).exists():
            model = UnitModel.load(directory)
            logger.info(f"Iteration {index}: {model.units} {model.target} units from {directory}")
            return model
        spec = self.settings.iterations[index - 1]
        frames_of = self._target_frames(index, spec)
        rng = np.random.default_rng([self.settings.random_seed, index, 1])
        selection = sample_frames(self.corpus.frame_counts, self.settings.kmeans_max_frames, rng)
        sample = np.concatenate(
            [frames_of(k)[chosen] for k, chosen in enumerate(selection) if len(chosen)]
        )
        logger.info(
            f"Iteration {index}: clustering {sample.shape[0]} {spec.target} frames "
            f"({sample.shape[1]} dims) into {spec.units} units"
        )
        model = fit_units(
            sample,
            spec.units,
            spec.target,
            layer=-1 if spec.layer is None else spec.layer,
            seed=self.settings.random_seed + index,
            batch_size=self.settings.kmeans_batch_size,
            n_init=self.settings.kmeans_n_init,
        )
        model.save(directory)
        logger.info(f"Iteration {index}: units fitted (mean squared distance {model.inertia:.4g})")
        return model

    def _target_frames(self, index: int, spec: IterationSettings) -> Any:
        """A function giving chunk ``k``'s frames to cluster (made once per iteration)."""
        if index not in self._frames:
            self._frames[index] = self._make_target_frames(index, spec)
        return self._frames[index]

    def _make_target_frames(self, index: int, spec: IterationSettings) -> Any:
        if spec.target == "mfcc":
            return lambda k: mfcc(self.corpus.features[k])
        if spec.target == "logmel":
            return lambda k: self.corpus.features[k]
        network = self._previous_encoder(index)
        depth = int(spec.layer if spec.layer is not None else self.config.layers)

        @tf.function(reduce_retracing=True)
        def hidden(features: Any) -> Any:
            return network(features, depth=depth, training=False)[-1]

        return lambda k: hidden(self.corpus.features[k][None]).numpy()[0]

    def _previous_encoder(self, index: int) -> EncoderNetwork:
        """Iteration ``index - 1``'s final encoder (from its latest checkpoint)."""
        previous = iteration_dir(self.settings.encoder_dir, index - 1)
        network = EncoderNetwork(self.config)
        network(np.zeros((1, 8, self.config.n_mels), np.float32))
        load_checkpoint(variables_view(network), find_checkpoint(previous))
        return network

    # -- training -------------------------------------------------------------------------

    def run(self, index: int) -> int:
        """Units, then masked prediction up to the iteration's steps; return the final step."""
        settings = self.settings
        spec = settings.iterations[index - 1]
        units = self.units(index)
        frames_of = self._target_frames(index, spec)
        targets = [units.assign(frames_of(k)) for k in range(len(self.corpus.features))]
        self._frames.pop(index, None)
        task = MaskedPredictionTask(self, index, units.units, targets)
        loop = run_task(task, self._loop_settings(index), quiet=self.quiet, verbose=self.verbose)
        self.history[index] = loop.history
        prefix = write_encoder(
            settings.encoder_dir,
            task.network,
            self.config,
            self.audio,
            loop.step,
            {"iteration": index, "units": units.units, "target": units.target, "step": loop.step},
        )
        logger.info(f"Iteration {index}: encoder written to {prefix}")
        return loop.step

    def _loop_settings(self, index: int) -> LoopSettings:
        settings = self.settings
        return LoopSettings(
            model_dir=str(iteration_dir(settings.encoder_dir, index)),
            max_steps=settings.iterations[index - 1].steps,
            # HuBERT's Adam: betas 0.9 / 0.98, epsilon 1e-6, linear warm-up.
            optimizer=OptimizerSettings(
                name="Adam",
                learning_rate=settings.learning_rate,
                warmup_steps=settings.warmup_steps,
                beta_2=0.98,
                epsilon=1e-6,
            ),
            save_checkpoints_steps=settings.save_checkpoints_steps,
            save_summary_steps=settings.save_summary_steps,
            random_seed=settings.random_seed + index,
            batch_size=settings.batch_size,
            mixed_precision=settings.mixed_precision,
            progress_label=f"Pretraining {index}",
        )


class MaskedPredictionTask:
    """One HuBERT iteration as a training task: predict the units of masked frames."""

    has_validation = False

    def __init__(
        self, pretrainer: Pretrainer, index: int, units: int, targets: list[np.ndarray]
    ) -> None:
        self.pretrainer = pretrainer
        self.index = index
        self.units = units
        self.description = f"Iteration {index}: masked prediction"
        settings = pretrainer.settings
        self.stream = MaskedExamples(pretrainer.corpus.features, targets, settings, index)
        self.unmasked_weight = float(settings.unmasked_weight)
        self.network: Any = None

    def build(self) -> Any:
        model, self.network = build_pretraining_model(self.pretrainer.config, self.units)
        return model

    def initialize(self, model: Any) -> None:
        """With ``init_from_previous``, the encoder starts from iteration ``index - 1``'s."""
        settings = self.pretrainer.settings
        if self.index > 1 and settings.init_from_previous:
            previous = find_checkpoint(iteration_dir(settings.encoder_dir, self.index - 1))
            load_checkpoint(variables_view(self.network), previous)
            logger.info(f"Iteration {self.index}: encoder initialised from {previous}")

    def batches(self, step: int) -> Iterator[Any]:
        while True:
            yield self.stream.batch(step)
            step += 1

    def losses(self, model: Any, batch: Any, training: bool) -> dict[str, Any]:
        features, mask, units = batch
        logits = model([features, mask], training=training)
        return masked_prediction_losses(logits, units, mask, self.unmasked_weight)

    def validation_batches(self) -> None:
        return None

    def describe(self, checkpoint: str, step: int) -> dict[str, Any]:
        pretrainer = self.pretrainer
        configuration = encoder_configuration(pretrainer.config, pretrainer.audio)
        training = {
            "command": "pretrain",
            "iteration": self.index,
            "units": self.units,
            "step": step,
        }
        return describe_model(configuration, checkpoint, training)


def pretrain(
    config: EncoderConfig,
    audio: EncoderAudio,
    settings: PretrainSettings,
    corpus: PretrainCorpus,
    quiet: bool = False,
    verbose: bool = False,
) -> Pretrainer:
    """Run every pending iteration; return the pretrainer (its ``history`` has the losses)."""
    pretrainer = Pretrainer(config, audio, settings, corpus, quiet, verbose)
    for index in pending_iterations(settings):
        pretrainer.run(index)
    return pretrainer
