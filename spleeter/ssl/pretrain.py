"""The pretraining loop: HuBERT iterations of clustering then masked prediction.

Iteration ``k`` lives in ``<encoder_dir>/iteration-<k>/``:

1. **Units.** ``units.npz`` is read when present (a resumed run keeps its targets); otherwise
   iteration 1 clusters the MFCCs (or log-mel frames) of the corpus and iteration ``k > 1``
   the hidden state ``layer`` of iteration ``k - 1``'s final encoder, with k-means
   (:mod:`spleeter.ssl.units`).
2. **Masked prediction.** The encoder (from scratch, or from the previous iteration with
   ``init_from_previous``) with a linear head over the units is trained with Adam (HuBERT's
   betas 0.9 / 0.98, epsilon 1e-6, linear warm-up) on the cross-entropy at masked frames (plus
   ``unmasked_weight`` times the cross-entropy at the others). Checkpoints, resume, progress,
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

from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from ..audio.features import mfcc
from ..model.checkpoint import find_checkpoint, load_checkpoint
from ..model.encoder_config import EncoderConfig
from ..model.layers.ssl_encoder import EncoderNetwork
from ..training import checkpointing
from ..training.loop import precision_policy
from ..training.progress import Progress
from ..training.summaries import Summaries
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


class WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to ``peak`` over ``warmup_steps`` updates, then constant."""

    def __init__(self, peak: float, warmup_steps: int) -> None:
        self.peak = float(peak)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step: Any) -> Any:
        progress = (keras.ops.cast(step, "float32") + 1.0) / float(max(self.warmup_steps, 1))
        return self.peak * keras.ops.minimum(1.0, progress)

    def get_config(self) -> dict[str, Any]:
        return {"peak": self.peak, "warmup_steps": self.warmup_steps}


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
        directory = iteration_dir(settings.encoder_dir, index)
        units = self.units(index)
        frames_of = self._target_frames(index, spec)
        targets = [units.assign(frames_of(k)) for k in range(len(self.corpus.features))]
        self._frames.pop(index, None)
        stream = MaskedExamples(self.corpus.features, targets, settings, index)
        keras.utils.set_random_seed(settings.random_seed + index)
        with precision_policy(settings.mixed_precision):
            model, network = build_pretraining_model(self.config, units.units)
            optimizer: Any = keras.optimizers.Adam(
                learning_rate=WarmupSchedule(settings.learning_rate, settings.warmup_steps),
                beta_1=0.9,
                beta_2=0.98,
                epsilon=1e-6,
            )
            if settings.mixed_precision:
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
            optimizer.build(model.trainable_variables)
            step = self._initial_step(index, model, network, optimizer, directory)
            if step < spec.steps:
                step = self._train(index, model, optimizer, stream, step, spec.steps, directory)
            else:
                logger.info(f"Iteration {index} is already trained to step {step}")
        prefix = write_encoder(
            settings.encoder_dir,
            network,
            self.config,
            self.audio,
            step,
            {"iteration": index, "units": units.units, "target": units.target, "step": step},
        )
        logger.info(f"Iteration {index}: encoder written to {prefix}")
        return step

    def _initial_step(
        self, index: int, model: Any, network: Any, optimizer: Any, directory: Path
    ) -> int:
        prefix = checkpointing.latest_checkpoint(str(directory))
        if prefix is not None:
            step = checkpointing.restore(prefix, model, optimizer)
            logger.info(f"Iteration {index}: resuming from {prefix} (step {step})")
            return step
        if index > 1 and self.settings.init_from_previous:
            previous = find_checkpoint(iteration_dir(self.settings.encoder_dir, index - 1))
            load_checkpoint(variables_view(network), previous)
            logger.info(f"Iteration {index}: encoder initialised from {previous}")
        checkpointing.save(str(directory), model, optimizer, 0)
        return 0

    def _train(
        self,
        index: int,
        model: Any,
        optimizer: Any,
        stream: MaskedExamples,
        step: int,
        max_steps: int,
        directory: Path,
    ) -> int:
        settings = self.settings
        mixed = settings.mixed_precision
        weight = float(settings.unmasked_weight)

        @tf.function
        def train_step(features: Any, mask: Any, units: Any) -> dict[str, Any]:
            with tf.GradientTape() as tape:
                logits = model([features, mask], training=True)
                losses = masked_prediction_losses(logits, units, mask, weight)
                objective = optimizer.scale_loss(losses["loss"]) if mixed else losses["loss"]
            variables = model.trainable_variables
            gradients = tape.gradient(objective, variables)
            optimizer.apply_gradients(zip(gradients, variables, strict=True))
            return losses

        parameters = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
        logger.info(
            f"Iteration {index}: masked prediction ({parameters:,} parameters) from step {step} "
            f"to {max_steps}, batches of {settings.batch_size} x {settings.frames} frames, "
            f"into {directory}"
        )
        summaries = Summaries(str(directory), settings.save_summary_steps, validation=False)
        progress = Progress(
            step, max_steps, self.quiet, self.verbose, description=f"Pretraining {index}"
        )
        history = self.history.setdefault(index, [])
        saved = step
        try:
            with progress.logging_above():
                while step < max_steps:
                    features, mask, units = stream.batch(step)
                    losses = train_step(
                        tf.constant(features), tf.constant(mask), tf.constant(units)
                    )
                    step += 1
                    values = {name: float(value) for name, value in losses.items()}
                    if not np.isfinite(values["loss"]):
                        logger.warning(f"Step {step}: the loss is {values['loss']}")
                    history.append(values["loss"])
                    progress.update(step, values["loss"])
                    summaries.add(step, values, progress.rate(step))
                    if step % settings.save_checkpoints_steps == 0 or step == max_steps:
                        checkpointing.save(str(directory), model, optimizer, step)
                        saved = step
        except KeyboardInterrupt:
            if step != saved:
                logger.warning(f"Interrupted: saving step {step} to resume from later")
                checkpointing.save(str(directory), model, optimizer, step)
            raise
        finally:
            progress.close()
            summaries.close()
        logger.info(
            f"Iteration {index} done: loss {history[-1]:.4g} ({progress.rate(step):.3g} steps/s)"
        )
        return step


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
