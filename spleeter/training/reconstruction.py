"""Training an autoencoder on unlabelled audio: the ``reconstruction`` task.

``spleeter pretrain -p spleeter:4stems-cluster -d AUDIO_DIR`` for any architecture whose
registry row declares ``task="reconstruction"`` (``seanet.autoencoder``). The audio is read as
for HuBERT pretraining (:mod:`spleeter.training.unlabelled`: every audio file below the
directory, or a CSV's ``<mix_name>_path`` column; ``n_chunks_per_file`` chunks of
``chunk_duration`` seconds each, decoded once and kept in memory as waveforms: about 350 kB
per second of stereo audio).
Example ``i`` is a ``segment_seconds`` crop of a chunk, both drawn from ``(random_seed, i)``
only, with the reparameterisation noise, so a resumed run sees exactly the batches an
uninterrupted one would.

The objective (the seed's): ``time_weight * MSE(x, y)`` + ``spectral_weight *`` the mean over
``spectral_resolutions`` of the MSE between STFT magnitudes divided by ``n_fft`` (Parseval's
scale; Hann window, hop = n_fft / 4) +
``beta_t * KL``, ``KL = mean(-0.5 (1 + log s^2 - m^2 - s^2))`` over latent frames and
dimensions (a mean where the seed summed: the weight does not change with the crop's length),
``beta_t = beta * min(1, step / beta_warmup_steps)`` (warm-up: 0 turns it off).

The checkpoints, resume, progress, summaries and ``model.json`` are the one loop's
(:mod:`.loop`); the model folder is the configuration's ``model_dir``, which ``spleeter
separate -p`` then reads.
"""

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import SpleeterError
from ..audio.adapter import AudioAdapter
from ..utils.logging import logger
from .precision import mixed_precision_choice

WORKERS = 4


@dataclass(frozen=True)
class ReconstructionSettings:
    """A configuration's ``pretrain`` block for the reconstruction task."""

    model_dir: str
    steps: int = 20000
    batch_size: int = 8
    learning_rate: float = 3e-4
    warmup_steps: int = 0
    segment_seconds: float = 1.0
    chunk_duration: float = 20.0
    n_chunks_per_file: int = 4
    beta: float = 0.01
    beta_warmup_steps: int = 5000
    time_weight: float = 1.0
    spectral_weight: float = 1.0
    spectral_resolutions: tuple[int, ...] = (512, 1024, 2048)
    save_checkpoints_steps: int = 1000
    save_summary_steps: int = 100
    random_seed: int = 0
    mixed_precision: str | None = None
    segment_samples: int = 0
    frames: int = 1
    """STFT frames a chunk must give (read by :func:`spleeter.training.unlabelled.plan_chunks`)."""

    @classmethod
    def from_params(
        cls,
        params: dict[str, Any],
        max_steps: int | None = None,
        seed: int | None = None,
        mixed_precision: bool | str | None = None,
    ) -> "ReconstructionSettings":
        from ..model.functions.seanet import hop

        block = dict(params.get("pretrain") or {})
        known = set(cls.__dataclass_fields__) - {"model_dir", "segment_samples", "frames"}
        unknown = sorted(set(block) - known)
        if unknown:
            logger.warning(f"Unknown pretrain key(s) ignored: {', '.join(unknown)}")
        values = {key: block[key] for key in known if key in block}
        if "spectral_resolutions" in values:
            values["spectral_resolutions"] = tuple(int(n) for n in values["spectral_resolutions"])
        if max_steps is not None:
            values["steps"] = max_steps
        values["random_seed"] = int(seed if seed is not None else params.get("random_seed", 0))
        values["mixed_precision"] = mixed_precision_choice(mixed_precision)
        step = hop(params)
        rate = int(params["sample_rate"])
        samples = max(
            step, int(round(float(values.get("segment_seconds", 1.0)) * rate / step)) * step
        )
        samples = max(samples, max(values.get("spectral_resolutions", cls.spectral_resolutions)))
        samples = -(-samples // step) * step
        frame_length, frame_step = int(params["frame_length"]), int(params["frame_step"])
        frames = max(1, -(-(samples - frame_length) // frame_step) + 1)
        settings = cls(
            model_dir=str(params["model_dir"]), segment_samples=samples, frames=frames, **values
        )
        settings.check()
        return settings

    def check(self) -> None:
        for name in ("steps", "batch_size", "n_chunks_per_file", "save_checkpoints_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise SpleeterError(f"pretrain.{name} must be a positive integer (got {value!r})")
        for name in ("learning_rate", "segment_seconds", "chunk_duration"):
            if not float(getattr(self, name)) > 0:
                raise SpleeterError(f"pretrain.{name} must be > 0 (got {getattr(self, name)!r})")
        for name in ("beta", "time_weight", "spectral_weight"):
            if not float(getattr(self, name)) >= 0:
                raise SpleeterError(f"pretrain.{name} must be >= 0 (got {getattr(self, name)!r})")
        if not self.spectral_resolutions or min(self.spectral_resolutions) < 16:
            raise SpleeterError("pretrain.spectral_resolutions must list FFT sizes >= 16")

    def beta_at(self, step: int) -> float:
        if self.beta_warmup_steps <= 0:
            return float(self.beta)
        return float(self.beta) * min(1.0, step / float(self.beta_warmup_steps))


class WaveformCorpus:
    """The decoded chunks ``(samples, channels)`` float32."""

    def __init__(self, waveforms: list[np.ndarray]) -> None:
        self.waveforms = waveforms

    @classmethod
    def load(
        cls,
        chunks: list[Any],
        params: dict[str, Any],
        audio_adapter: AudioAdapter,
        min_samples: int,
    ) -> "WaveformCorpus":
        from ..dataset import load_audio

        rate, channels = int(params["sample_rate"]), int(params["n_channels"])

        def decode(chunk: Any) -> np.ndarray | str:
            try:
                waveform = load_audio(chunk.path, chunk.start, chunk.duration, rate, audio_adapter)
            except SpleeterError as error:
                return f"{chunk.path} at {chunk.start:.1f} s: {error}"
            if waveform.shape[0] < min_samples:
                return f"{chunk.path} at {chunk.start:.1f} s: {waveform.shape[0]} samples"
            if waveform.shape[1] != channels:
                waveform = (
                    np.repeat(waveform[:, :1], channels, axis=1)
                    if waveform.shape[1] < channels
                    else waveform[:, :channels]
                )
            return np.ascontiguousarray(waveform, np.float32)

        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            results = list(pool.map(decode, chunks))
        problems = [r for r in results if isinstance(r, str)]
        kept = [r for r in results if not isinstance(r, str)]
        if problems:
            logger.warning(f"Skipping {len(problems)} chunk(s): " + "; ".join(problems[:5]))
        if not kept:
            raise SpleeterError("No audio chunk could be decoded for pretraining")
        seconds = sum(w.shape[0] for w in kept) / rate
        logger.info(f"Pretraining audio: {len(kept)} chunks, {seconds / 60:.1f} min")
        return cls(kept)  # type: ignore[arg-type]


class ReconstructionExamples:
    """The seeded stream of (crop, noise, beta) examples."""

    def __init__(
        self, corpus: WaveformCorpus, settings: ReconstructionSettings, hop: int, dimension: int
    ) -> None:
        self.corpus = corpus
        self.settings = settings
        self.hop = hop
        self.dimension = dimension

    def example(self, position: int) -> tuple[np.ndarray, np.ndarray]:
        from ..dataset import epoch_order

        waveforms = self.corpus.waveforms
        epoch, offset = divmod(int(position), len(waveforms))
        chunk = waveforms[
            int(epoch_order((self.settings.random_seed, epoch), len(waveforms))[offset])
        ]
        rng = np.random.default_rng([self.settings.random_seed, 7, int(position)])
        samples = self.settings.segment_samples
        first = int(rng.integers(0, max(1, chunk.shape[0] - samples + 1)))
        crop = np.zeros((samples, chunk.shape[1]), np.float32)
        piece = chunk[first : first + samples]
        crop[: piece.shape[0]] = piece
        noise = rng.standard_normal((samples // self.hop, self.dimension)).astype(np.float32)
        return crop, noise

    def batch(self, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        size = self.settings.batch_size
        audio, noise = zip(*(self.example(step * size + k) for k in range(size)), strict=True)
        beta = np.float32(self.settings.beta_at(step))
        return np.stack(audio), np.stack(noise), beta


def reconstruction_losses(
    audio: Any,
    reconstruction: Any,
    mean: Any,
    log_variance: Any,
    beta: Any,
    settings: ReconstructionSettings,
) -> dict[str, Any]:
    """``loss`` and its terms (tensors; traced by the loop)."""
    import tensorflow as tf

    audio = tf.cast(audio, tf.float32)
    reconstruction = tf.cast(reconstruction, tf.float32)
    mean = tf.cast(mean, tf.float32)
    log_variance = tf.cast(log_variance, tf.float32)
    time_mse = tf.reduce_mean(tf.square(audio - reconstruction))
    spectral = []
    signals = tf.transpose(audio, [0, 2, 1])
    decoded = tf.transpose(reconstruction, [0, 2, 1])
    for n_fft in settings.spectral_resolutions:
        step = max(1, n_fft // 4)
        target = tf.abs(tf.signal.stft(signals, n_fft, step, n_fft, pad_end=True))
        estimate = tf.abs(tf.signal.stft(decoded, n_fft, step, n_fft, pad_end=True))
        # / n_fft: Parseval's scale, so that every resolution weighs as the time-domain MSE.
        spectral.append(tf.reduce_mean(tf.square(target - estimate)) / float(n_fft))
    spectral_mse = tf.add_n(spectral) / len(spectral)
    kl = tf.reduce_mean(-0.5 * (1.0 + log_variance - tf.square(mean) - tf.exp(log_variance)))
    loss = (
        settings.time_weight * time_mse
        + settings.spectral_weight * spectral_mse
        + tf.cast(beta, tf.float32) * kl
    )
    return {
        "loss": loss,
        "time_mse": time_mse,
        "spectral_mse": spectral_mse,
        "kl": kl,
        "beta": tf.cast(beta, tf.float32),
    }


class ReconstructionTask:
    """The autoencoder of a configuration, trained to reconstruct its input."""

    has_validation = False

    def __init__(
        self,
        params: dict[str, Any],
        settings: ReconstructionSettings,
        corpus: WaveformCorpus,
    ) -> None:
        from ..model.functions.seanet import SEANetSettings
        from ..model.registry import architecture

        self.params = params
        self.settings = settings
        self.entry = architecture(params)
        self.description = f"Pretraining {self.entry.type} (reconstruction)"
        network = SEANetSettings.from_params(params)
        self.examples = ReconstructionExamples(corpus, settings, network.hop, network.dimension)

    def build(self) -> Any:
        return self.entry.build_function()(self.params)

    def initialize(self, model: Any) -> None:
        return None

    def batches(self, step: int) -> Iterator[Any]:
        while True:
            yield self.examples.batch(step)
            step += 1

    def losses(self, model: Any, batch: Any, training: bool) -> dict[str, Any]:
        import tensorflow as tf

        audio, noise, beta = batch
        if not training:
            noise = tf.zeros_like(noise)
        reconstruction, mean, log_variance = model([audio, noise], training=training)
        return reconstruction_losses(audio, reconstruction, mean, log_variance, beta, self.settings)

    def validation_batches(self) -> None:
        return None

    def describe(self, checkpoint: str, step: int) -> dict[str, Any]:
        from ..model.description import describe_model

        training = {"command": "pretrain", "task": "reconstruction", "step": step}
        return describe_model(self.params, checkpoint, training)


def run_reconstruction(
    params: dict[str, Any],
    data: str | None,
    audio_adapter: AudioAdapter,
    *,
    csv_path: str | None = None,
    max_steps: int | None = None,
    seed: int | None = None,
    mixed_precision: bool | str | None = None,
    export: bool = False,
    quiet: bool = False,
    verbose: bool = False,
) -> Any:
    """Train ``params``' autoencoder on the audio of ``data`` into its ``model_dir``; return
    the loop (None when already trained)."""
    from ..model.checks import ConfigurationError, configuration_problems

    problems = configuration_problems(params, "separate")
    if problems:
        raise ConfigurationError(str(params.get("model_dir", "")), problems)
    settings = ReconstructionSettings.from_params(params, max_steps, seed, mixed_precision)
    params = {**params, "model_dir": settings.model_dir}
    loop = None
    done = _trained_step(settings.model_dir) >= settings.steps
    if done:
        logger.info(f"{settings.model_dir} is already trained to {settings.steps} steps")
    else:
        if data is None:
            raise SpleeterError("Pretraining needs audio: give -d AUDIO_DIR")
        from .unlabelled import audio_files, plan_chunks

        files = audio_files(data, csv_path, str(params.get("mix_name", "mix")))
        chunks = plan_chunks(files, params, settings)  # type: ignore[arg-type]
        from ..engines.tensorflow import import_tensorflow

        import_tensorflow()
        from ..training.optimizers import OptimizerSettings
        from .loop import LoopSettings, run_task

        corpus = WaveformCorpus.load(chunks, params, audio_adapter, settings.segment_samples // 4)
        task = ReconstructionTask(params, settings, corpus)
        loop = run_task(
            task,
            LoopSettings(
                model_dir=settings.model_dir,
                max_steps=settings.steps,
                optimizer=OptimizerSettings(
                    name="Adam",
                    learning_rate=settings.learning_rate,
                    warmup_steps=settings.warmup_steps,
                ),
                save_checkpoints_steps=settings.save_checkpoints_steps,
                save_summary_steps=settings.save_summary_steps,
                throttle_secs=float(params.get("throttle_secs", 600)),
                random_seed=settings.random_seed,
                batch_size=settings.batch_size,
                mixed_precision=settings.mixed_precision,
                progress_label="Pretraining",
            ),
            quiet=quiet,
            verbose=verbose,
        )
    if export:
        from ..engines.autoencoder_export import export_autoencoder

        for path in export_autoencoder(params, settings.model_dir):
            logger.info(f"ONNX model written to {path}")
    return loop


def _trained_step(model_dir: str) -> int:
    from . import checkpointing

    if not os.path.isdir(model_dir):
        return -1
    prefix = checkpointing.latest_checkpoint(model_dir)
    if prefix is None:
        return -1
    name = os.path.basename(prefix)
    return int(name.rsplit("-", 1)[1]) if "-" in name else -1
