"""Encoder directories and the feature extraction API (:class:`SSLEncoder`).

An encoder directory (written by ``spleeter pretrain``, or by ``python -m spleeter.ssl.convert``
from an external checkpoint) holds:

* ``encoder.json``: the architecture (``encoder``, see :class:`~spleeter.ssl.config.
  EncoderConfig`) and the signal it reads (``audio``: sample rate, STFT frame length and step,
  ``F`` bins, channels, ``T`` frames per block), so the directory is self-describing;
* a TF1-format checkpoint (``checkpoint``, ``model.ckpt-<step>.*``) whose variables are all
  named ``ssl_encoder/...``: the same names the fused separator's checkpoint uses for its
  encoder, so the separator is initialised from it by name;
* ``iteration-<k>/``: the pretraining iterations (units, checkpoints, TensorBoard events);
* ``encoder.onnx`` once exported (``spleeter pretrain --export`` or ``engine="onnx"``).

Example::

    >>> from spleeter.ssl import SSLEncoder
    >>> encoder = SSLEncoder.load("ssl-encoder")
    >>> features = encoder.features(waveform)      # (frames, dim), one per STFT frame
    >>> encoder.frame_rate                          # 43.07 frames/s at 44.1 kHz, hop 1024
"""

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .. import SpleeterError
from ..audio.features import encoder_mel_matrix, log_mel, waveform_magnitude
from ..audio.spectrogram import blocks, unblock
from ..model.encoder_config import EncoderConfig
from ..model.encoder_folder import (  # noqa: F401 (this module's API since it was written)
    ENCODER_FORMAT,
    ENCODER_JSON,
    EncoderAudio,
    describe,
    description_config,
    load_encoder_weights,
    read_description,
    variables_view,
)
from ..model.registry import model_params
from ..model.ssl_encoder import HEAD_NAME, build_feature_model, build_pretraining_model  # noqa: F401
from ..utils.logging import logger
from .config import encoder_config
from .export import (
    ONNX_FILENAME,
    checkpoint_fingerprint,
    export_encoder_onnx,
    read_onnx_fingerprint,
)

BATCH_BLOCKS = 4
"""Blocks of ``T`` frames per network call when extracting features."""


def write_encoder(
    directory: str | os.PathLike,
    network: Any,
    config: EncoderConfig,
    audio: EncoderAudio,
    step: int,
    extra: dict[str, Any] | None = None,
) -> str:
    """Save the encoder's weights (only ``ssl_encoder/...``), ``encoder.json`` and
    ``model.json`` into ``directory``, replacing the previous checkpoint there; return the
    checkpoint prefix."""
    from ..model.checkpoint import save_checkpoint
    from ..model.description import describe_model, write_model_description
    from ..model.encoder_folder import encoder_configuration
    from ..model.provider import ModelProvider

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    prefix = save_checkpoint(variables_view(network), directory, step)
    for old in directory.glob("model.ckpt-*"):
        if not old.name.startswith(f"{Path(prefix).name}."):
            old.unlink(missing_ok=True)
    temporary = directory / f".{ENCODER_JSON}.tmp"
    temporary.write_text(json.dumps(describe(config, audio, extra), indent=2) + "\n")
    os.replace(temporary, directory / ENCODER_JSON)
    training = {"command": "pretrain", **(extra or {})}
    write_model_description(
        directory, describe_model(encoder_configuration(config, audio), prefix, training)
    )
    ModelProvider.writeProbe(str(directory))
    return prefix


class SSLEncoder:
    """Features of a trained SSL encoder: a waveform in, ``(frames, dim)`` out, one feature
    frame per frame of the separator's STFT (hop ``frame_step`` samples).

    The waveform's STFT is cut into blocks of ``T`` frames (the last one zero-padded) exactly
    as the separator feeds its network, so these are the features the fused separator sees;
    ``block_frames=None`` runs the whole waveform as one block instead.

    Use :meth:`load` (an encoder directory) or :meth:`from_separator` (the encoder inside a
    trained fused separator).
    """

    def __init__(
        self,
        config: EncoderConfig,
        audio: EncoderAudio,
        checkpoint: str,
        layer: int | None = None,
        engine: str = "tensorflow",
        onnx_directory: str | None = None,
    ) -> None:
        if engine not in ("tensorflow", "onnx"):
            raise SpleeterError(f"Unknown engine {engine!r} (choose tensorflow or onnx)")
        self.config = config
        self.audio = audio
        self.checkpoint = checkpoint
        self.layer = config.layers if layer is None else int(layer)
        if not 0 <= self.layer <= config.layers:
            raise SpleeterError(f"layer must be in 0..{config.layers} (got {self.layer})")
        self.engine = engine
        self.block_frames: int | None = audio.T
        self._matrix = encoder_mel_matrix(config, audio.F)
        self._run: Any = None
        self._onnx_directory = onnx_directory or str(Path(checkpoint).parent)

    @classmethod
    def load(
        cls, directory: str | os.PathLike, layer: int | None = None, engine: str = "tensorflow"
    ) -> "SSLEncoder":
        """The encoder of an encoder directory (``spleeter pretrain``'s ``encoder_dir``)."""
        from ..model.checkpoint import find_checkpoint

        config, audio = description_config(read_description(directory))
        return cls(config, audio, find_checkpoint(directory), layer, engine)

    @classmethod
    def from_separator(cls, params_descriptor: str, layer: int | None = None) -> "SSLEncoder":
        """The (possibly fine-tuned) encoder inside a trained fused separator's model
        directory (``model_dir`` of a configuration whose model has ``params.encoder``)."""
        from ..model.checkpoint import find_checkpoint
        from ..model.provider import ModelProvider
        from ..utils.configuration import load_configuration

        params = load_configuration(params_descriptor)
        config = encoder_config(params)
        if layer is None:
            layer = model_params(params).get("feature_layer")
        directory = ModelProvider.default().get(
            params["model_dir"], unpublished=params.get("model_unpublished")
        )
        return cls(config, EncoderAudio.from_params(params), find_checkpoint(directory), layer)

    # -- properties ------------------------------------------------------------------------

    @property
    def sample_rate(self) -> int:
        return self.audio.sample_rate

    @property
    def hop(self) -> int:
        """Samples between feature frames (the STFT's ``frame_step``)."""
        return self.audio.frame_step

    @property
    def frame_rate(self) -> float:
        """Feature frames per second."""
        return self.audio.sample_rate / self.audio.frame_step

    @property
    def dim(self) -> int:
        return self.config.dim

    # -- extraction -----------------------------------------------------------------------

    def magnitude(self, waveform: np.ndarray) -> np.ndarray:
        """``|STFT|[:, :F]`` ``(frames, F, C)`` on the separator's grid."""
        audio = self.audio
        return waveform_magnitude(
            waveform, audio.frame_length, audio.frame_step, audio.F, audio.n_channels
        )

    def log_mel(self, waveform: np.ndarray) -> np.ndarray:
        """The encoder's input ``(frames, n_mels)`` for a ``(n, channels)`` waveform."""
        return log_mel(self.magnitude(waveform), self._matrix)

    def features(self, waveform: np.ndarray, block_frames: int | None | str = "auto") -> np.ndarray:
        """Hidden state ``layer`` for every STFT frame of ``waveform``: ``(frames, dim)``.

        ``waveform`` is ``(n_samples, channels)`` (or mono ``(n_samples,)``) at
        :attr:`sample_rate`; there are ``ceil((n_samples + frame_length) / frame_step)``
        frames, frame ``i`` centred on sample ``i * frame_step - frame_length / 2``.
        ``block_frames``: ``"auto"`` (the separator's ``T``), a number of frames, or None.
        """
        magnitude = self.magnitude(waveform)
        frames = magnitude.shape[0]
        size = self.block_frames if block_frames == "auto" else block_frames
        packed = blocks(magnitude, frames if size is None else int(size))
        (hidden,) = self._runner()(packed).values()
        return unblock(hidden, frames)

    def _runner(self) -> Any:
        if self._run is None:
            self._run = self._onnx_runner() if self.engine == "onnx" else self._tf_runner()
        return self._run

    def _tf_runner(self) -> Any:
        from ..engines.tensorflow import KerasRunner, import_tensorflow
        from ..model.checkpoint import load_checkpoint

        import_tensorflow()
        model, network = build_feature_model(self.config, self.audio, self.layer)
        load_checkpoint(variables_view(network), self.checkpoint)
        return KerasRunner(model, self.audio.F, self.audio.n_channels, BATCH_BLOCKS)

    def _onnx_runner(self) -> Any:
        from ..engines.onnxruntime import OnnxRuntimeEngine

        return OnnxRuntimeEngine(str(self.onnx_path()), "cpu", BATCH_BLOCKS)

    def onnx_path(self) -> Path:
        """The ONNX export of this encoder and layer, made (once) when missing or stale."""
        name = (
            ONNX_FILENAME if self.layer == self.config.layers else f"encoder-layer{self.layer}.onnx"
        )
        expected = checkpoint_fingerprint(self.checkpoint, self.layer)
        candidates = [Path(self._onnx_directory) / name]
        from ..engines.onnx_export import cache_directory

        candidates.append(cache_directory() / f"ssl-{expected}.onnx")
        for candidate in candidates:
            if candidate.is_file() and read_onnx_fingerprint(candidate) == expected:
                return candidate
        target = candidates[0] if os.access(self._onnx_directory, os.W_OK) else candidates[1]
        logger.info(f"Exporting the encoder to ONNX once ({target})")
        return export_encoder_onnx(self.config, self.audio, self.checkpoint, target, self.layer)
