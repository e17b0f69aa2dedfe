"""Channel and level conversions on numpy arrays (upstream's public helper names)."""

import numpy as np


def to_n_channels(waveform: np.ndarray, n_channels: int) -> np.ndarray:
    """Return ``waveform`` (n, c) with exactly ``n_channels`` channels.

    Extra channels are dropped; missing ones are filled by repeating the existing channels
    (a mono signal is duplicated).
    """
    waveform = np.asarray(waveform)
    if waveform.ndim == 1:
        waveform = waveform[:, None]
    channels = waveform.shape[1]
    if channels == n_channels:
        return waveform
    if channels > n_channels:
        return waveform[:, :n_channels]
    repeats = -(-n_channels // channels)
    return np.tile(waveform, (1, repeats))[:, :n_channels]


def to_stereo(waveform: np.ndarray) -> np.ndarray:
    """Return a 2-channel version of ``waveform``: mono duplicated, more than 2 truncated."""
    return to_n_channels(waveform, 2)


def gain_to_db(tensor: np.ndarray, espilon: float = 10e-10) -> np.ndarray:
    """Amplitude to decibels, ``20 * log10(max(x, espilon))`` (upstream's parameter name)."""
    return 20.0 / np.log(10) * np.log(np.maximum(tensor, espilon))


def db_to_gain(tensor: np.ndarray) -> np.ndarray:
    """Decibels to amplitude, ``10 ** (x / 20)``."""
    return np.power(10.0, tensor / 20.0)


def spectrogram_to_db_uint(
    spectrogram: np.ndarray, db_range: float = 100.0
) -> tuple[np.ndarray, float, float]:
    """Encode a magnitude spectrogram as uint8 decibels spanning ``db_range`` below its max.

    Returns ``(uint8 array, min_db, max_db)``; decode with ``db_uint_spectrogram_to_gain``.
    """
    db = gain_to_db(spectrogram)
    max_db = float(np.max(db))
    db = np.maximum(db, max_db - db_range)
    min_db = float(np.min(db))
    scale = max(max_db - min_db, 1e-16)
    return ((db - min_db) / scale * 255.9999).astype(np.uint8), min_db, max_db


def db_uint_spectrogram_to_gain(
    db_uint_spectrogram: np.ndarray, min_db: float, max_db: float
) -> np.ndarray:
    """Decode ``spectrogram_to_db_uint``'s output back to a float32 magnitude spectrogram."""
    db = db_uint_spectrogram.astype(np.float32) * ((max_db - min_db) / 255.9999) + min_db
    return db_to_gain(db).astype(np.float32)
