"""A trained SEANet autoencoder for inference: encode a waveform, decode latent frames."""

from typing import Any

import numpy as np

from ..utils.logging import logger
from .checkpoint import find_checkpoint, load_checkpoint
from .functions.seanet import SEANetSettings, build_autoencoder

DECODE_BATCH = 1
"""Latent sequences decoded per call (bounded activation memory)."""


class LoadedAutoencoder:
    """The encoder (latent means) and decoder of ``params``' autoencoder, with the weights of
    ``model_dir``'s latest checkpoint (or of an already built ``model``)."""

    def __init__(
        self, params: dict[str, Any], model_dir: str | None = None, model: Any = None
    ) -> None:
        import tensorflow as tf  # (the separator imported it through its engine already)

        self.settings = SEANetSettings.from_params(params)
        self.hop = self.settings.hop
        if model is None:
            model = build_autoencoder(params)
            checkpoint = find_checkpoint(model_dir)  # type: ignore[arg-type]
            load_checkpoint(model, checkpoint)
            logger.debug(f"Loaded the autoencoder from {checkpoint}")
        self.model = model
        self.encoder = model.get_layer("seanet_encoder")
        self.decoder = model.get_layer("seanet_decoder")
        channels, dimension = self.settings.channels, self.settings.dimension
        self._encode = tf.function(
            lambda audio: self.encoder(audio, training=False)[0],
            input_signature=[tf.TensorSpec((None, None, channels), tf.float32)],
            autograph=False,
        )
        self._decode = tf.function(
            lambda latent: self.decoder(latent, training=False),
            input_signature=[tf.TensorSpec((None, None, dimension), tf.float32)],
            autograph=False,
        )

    def padded_length(self, n_samples: int) -> int:
        return -(-n_samples // self.hop) * self.hop

    def encode(self, waveform: np.ndarray) -> np.ndarray:
        """Latent means ``(ceil(n / hop), dimension)`` of a ``(n, channels)`` waveform (zero-
        padded to a whole number of latent frames)."""
        n = waveform.shape[0]
        padded = np.zeros((max(self.padded_length(n), self.hop), waveform.shape[1]), np.float32)
        padded[:n] = waveform
        return self._encode(padded[None]).numpy()[0]

    def decode(self, latents: np.ndarray) -> np.ndarray:
        """Waveforms ``(k, frames * hop, channels)`` of latent sequences ``(k, frames, D)``."""
        parts = [
            self._decode(np.ascontiguousarray(latents[start : start + DECODE_BATCH])).numpy()
            for start in range(0, latents.shape[0], DECODE_BATCH)
        ]
        return np.concatenate(parts)
