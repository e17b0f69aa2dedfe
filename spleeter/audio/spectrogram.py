"""Short-time Fourier transforms on upstream Spleeter's frame grid.

Upstream prepends ``frame_length`` zeros to the waveform, frames it with a periodic Hann window
(no centring) and zero-pads the end to a whole frame. Its inverse overlap-adds with the same
window, compensates the window's squared sum (2/3 at 75 % overlap) and keeps the samples from
``frame_length`` on, so the output has exactly the input's length. The functions below follow that
grid with librosa, so a waveform's spectrogram and its reconstruction match upstream's.

Layouts: waveforms are ``(n_samples, n_channels)``; STFTs are ``(n_frames, n_bins, n_channels)``.
"""

import librosa
import numpy as np

WINDOW = "hann"
"""librosa's window name: a periodic Hann window, as ``tf.signal.hann_window(periodic=True)``."""


def frame_count(n_samples: int, frame_length: int, frame_step: int) -> int:
    """STFT frames of an ``n_samples`` waveform (front and end padding included)."""
    return -(-(n_samples + frame_length) // frame_step)


def frames_stft(padded: np.ndarray, frame_length: int, frame_step: int) -> np.ndarray:
    """STFT ``(n_frames, bins, channels)`` of an already padded ``(n, c)`` signal whose length
    is ``(n_frames - 1) * frame_step + frame_length``: one frame every ``frame_step`` samples."""
    spectrum = librosa.stft(
        np.ascontiguousarray(padded.T),
        n_fft=frame_length,
        hop_length=frame_step,
        window=WINDOW,
        center=False,
    )
    return np.ascontiguousarray(spectrum.transpose(2, 1, 0))


def stft(waveform: np.ndarray, frame_length: int, frame_step: int) -> np.ndarray:
    """Complex64 STFT ``(n_frames, frame_length // 2 + 1, n_channels)`` of a ``(n, c)`` waveform."""
    n_samples = waveform.shape[0]
    frames = frame_count(n_samples, frame_length, frame_step)
    padded = np.zeros(((frames - 1) * frame_step + frame_length, waveform.shape[1]), np.float32)
    padded[frame_length : frame_length + n_samples] = waveform
    return frames_stft(padded, frame_length, frame_step)


def overlap_add(spectrum: np.ndarray, frame_length: int, frame_step: int) -> np.ndarray:
    """Inverse of :func:`frames_stft`: the ``((n_frames - 1) * frame_step + frame_length, c)``
    signal, each sample normalised by the squared windows of the frames present.

    Where every frame overlapping a sample is present (all but the first and last
    ``frame_length - frame_step`` samples), this equals upstream's overlap-add times 2/3.
    """
    waveform = librosa.istft(
        np.ascontiguousarray(spectrum.transpose(2, 1, 0)),
        hop_length=frame_step,
        n_fft=frame_length,
        window=WINDOW,
        center=False,
        dtype=np.float32,
    )
    return np.ascontiguousarray(waveform.T)


def istft(spectrum: np.ndarray, frame_length: int, frame_step: int, n_samples: int) -> np.ndarray:
    """Float32 waveform ``(n_samples, n_channels)`` from an STFT made by :func:`stft`."""
    return overlap_add(spectrum, frame_length, frame_step)[frame_length : frame_length + n_samples]


def magnitude_blocks(spectrum: np.ndarray, T: int, F: int) -> np.ndarray:
    """Magnitudes of the first ``F`` bins, cut into non-overlapping blocks of ``T`` frames.

    The frame axis is zero-padded to a multiple of ``T``; the result is
    ``(n_blocks, T, F, n_channels)`` float32, the network's input.
    """
    frames, _, channels = spectrum.shape
    n_blocks = -(-frames // T)
    blocks = np.zeros((n_blocks * T, F, channels), dtype=np.float32)
    np.abs(spectrum[:, :F, :], out=blocks[:frames])
    return blocks.reshape(n_blocks, T, F, channels)


def unblock(blocks: np.ndarray, n_frames: int) -> np.ndarray:
    """Undo :func:`magnitude_blocks`' partition: ``(n_blocks, T, ...)`` to ``(n_frames, ...)``."""
    return blocks.reshape(-1, *blocks.shape[2:])[:n_frames]
