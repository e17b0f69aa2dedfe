"""The encoder's input features, in numpy: log-mel frames on the separator's STFT grid.

The fused separator computes the same features inside its graph from the mixture magnitude
it is given (:class:`spleeter.model.layers.ssl_encoder.LogMel`); these functions compute them
offline, for pretraining and for :class:`spleeter.ssl.encoder.SSLEncoder`. Both use one definition:

    power = mean over channels of |X|^2         (the first F bins of the STFT)
    log_mel = log(power @ mel_matrix + LOG_FLOOR)

``mel_matrix`` is a Slaney-style mel filterbank (``librosa.filters.mel(..., htk=False,
norm="slaney")``, reimplemented here so that building a model does not import librosa) restricted
to the first ``F`` bins. The STFT is upstream's (:mod:`spleeter.audio.spectrogram`), so feature
frame ``i`` is STFT frame ``i`` of the separator.
"""

from functools import lru_cache
from typing import Any

import numpy as np

from .convertor import to_n_channels
from .spectrogram import chunk_magnitude, stft

LOG_FLOOR = 1e-6
"""Added to the mel energies before the logarithm (silence gives ``log(1e-6)`` = -13.8)."""

N_MFCC = 13
"""Cepstral coefficients of the MFCC targets (with deltas and delta-deltas: 39 dimensions)."""

DELTA_WIDTH = 2
"""Frames on each side in the delta regression (HTK's ``DELTAWINDOW``)."""

_MIN_LOG_HZ = 1000.0
_MEL_STEP = 200.0 / 3.0
_LOG_STEP = np.log(6.4) / 27.0


def hz_to_mel(frequencies: np.ndarray | float) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz (66.7 Hz per mel), logarithmic above."""
    frequencies = np.asarray(frequencies, dtype=np.float64)
    mels = frequencies / _MEL_STEP
    above = frequencies >= _MIN_LOG_HZ
    min_log_mel = _MIN_LOG_HZ / _MEL_STEP
    return np.where(
        above, min_log_mel + np.log(np.maximum(frequencies, 1e-12) / _MIN_LOG_HZ) / _LOG_STEP, mels
    )


def mel_to_hz(mels: np.ndarray | float) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    mels = np.asarray(mels, dtype=np.float64)
    min_log_mel = _MIN_LOG_HZ / _MEL_STEP
    return np.where(
        mels >= min_log_mel,
        _MIN_LOG_HZ * np.exp(_LOG_STEP * (mels - min_log_mel)),
        _MEL_STEP * mels,
    )


@lru_cache(maxsize=16)
def _mel_filterbank(
    sample_rate: int, frame_length: int, n_mels: int, fmin: float, fmax: float
) -> np.ndarray:
    bins = np.fft.rfftfreq(frame_length, 1.0 / sample_rate)
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - bins[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]  # Slaney: constant energy per band
    matrix = weights.astype(np.float32)
    matrix.flags.writeable = False
    return matrix


def mel_filterbank(
    sample_rate: int, frame_length: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None
) -> np.ndarray:
    """Slaney mel filterbank ``(n_mels, frame_length // 2 + 1)`` float32 (read-only).

    Equal to ``librosa.filters.mel(sr=sample_rate, n_fft=frame_length, n_mels=n_mels,
    fmin=fmin, fmax=fmax)`` (checked by the tests).
    """
    top = sample_rate / 2.0 if fmax is None else float(fmax)
    return _mel_filterbank(int(sample_rate), int(frame_length), int(n_mels), float(fmin), top)


def encoder_mel_matrix(config: Any, n_bins: int) -> np.ndarray:
    """The ``(n_bins, n_mels)`` matrix taking the first ``n_bins`` power bins to mel energies.

    The bands span ``fmin`` to :meth:`EncoderConfig.mel_fmax` (by default the top of the
    input band), so no band reaches beyond the bins the separator sees.
    """
    full = mel_filterbank(
        config.sample_rate,
        config.frame_length,
        config.n_mels,
        config.fmin,
        config.mel_fmax(n_bins),
    )
    return np.ascontiguousarray(full[:, :n_bins].T)


def log_mel(magnitude: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Log-mel frames ``(..., frames, n_mels)`` of magnitudes ``(..., frames, F, channels)``."""
    magnitude = np.asarray(magnitude, dtype=np.float32)
    power = np.mean(magnitude * magnitude, axis=-1)
    return np.log(np.matmul(power, matrix) + np.float32(LOG_FLOOR)).astype(np.float32)


def waveform_magnitude(
    waveform: np.ndarray, frame_length: int, frame_step: int, n_bins: int, n_channels: int = 2
) -> np.ndarray:
    """``|STFT|[:, :n_bins]`` ``(frames, n_bins, n_channels)`` of a ``(n, c)`` waveform on the
    separator's frame grid (:func:`spleeter.audio.spectrogram.stft`: frame ``i`` of a file is
    frame ``i`` of its separation)."""
    waveform = to_n_channels(np.asarray(waveform, dtype=np.float32), n_channels)
    return np.abs(stft(waveform, frame_length, frame_step)[:, :n_bins, :])


def chunk_features_magnitude(
    waveform: np.ndarray, frame_length: int, frame_step: int, n_bins: int, n_channels: int = 2
) -> np.ndarray:
    """:func:`~spleeter.audio.spectrogram.chunk_magnitude` of a chunk from the middle of a
    file, on ``n_channels`` channels."""
    waveform = to_n_channels(np.asarray(waveform, dtype=np.float32), n_channels)
    return chunk_magnitude(waveform, frame_length, frame_step, n_bins)


def deltas(features: np.ndarray, width: int = DELTA_WIDTH) -> np.ndarray:
    """HTK delta regression over frames (edges repeated) of ``(frames, dims)`` features."""
    padded = np.pad(features, ((width, width), (0, 0)), mode="edge")
    frames = features.shape[0]
    total = np.zeros_like(features, dtype=np.float32)
    for k in range(1, width + 1):
        total += k * (
            padded[width + k : width + k + frames] - padded[width - k : width - k + frames]
        )
    return total / np.float32(2 * sum(k * k for k in range(1, width + 1)))


def mfcc(log_mel_frames: np.ndarray, n_mfcc: int = N_MFCC) -> np.ndarray:
    """MFCCs (orthonormal DCT-II of the log-mel frames) followed by their deltas and
    delta-deltas: ``(frames, 3 * n_mfcc)`` (HuBERT's 39 dimensions)."""
    import scipy.fft

    n_mfcc = min(n_mfcc, log_mel_frames.shape[-1])
    cepstra = scipy.fft.dct(log_mel_frames, type=2, norm="ortho", axis=-1)[:, :n_mfcc]
    cepstra = cepstra.astype(np.float32)
    first = deltas(cepstra)
    return np.concatenate([cepstra, first, deltas(first)], axis=-1)
