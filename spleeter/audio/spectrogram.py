"""Short-time Fourier transforms on upstream Spleeter's frame grid.

Upstream prepends ``frame_length`` zeros to the waveform, frames it with a periodic Hann window
(no centring) and zero-pads the end to a whole frame. Its inverse overlap-adds with the same
window, compensates the window's squared sum (2/3 at 75 % overlap) and keeps the samples from
``frame_length`` on, so the output has exactly the input's length. The functions below follow
that grid (and agree with ``tf.signal`` and ``librosa`` to float precision, see the tests).

They are written on ``scipy.fft`` rather than calling ``librosa.stft``: librosa's first call
imports scipy.signal and its audio stack, about 2 s per process, a third of a cold
``spleeter separate`` of a one-minute song; the transform itself is framing, a window and an
FFT. ``scipy.fft`` rather than ``numpy.fft``: the same pocketfft, but it computes a float32
forward transform in float32 (numpy: 3x slower) and splits a batch of transforms over
threads (``SPLEETER_THREADS``, else every core): 20 -> 3.6 ms forward, 7 -> 3.8 ms inverse per
512-frame stereo segment on 2 cores (the inverse bit-identical to numpy's).

Layouts: waveforms are ``(n_samples, n_channels)``; STFTs are ``(n_frames, n_bins, n_channels)``
arrays whose memory runs channel by channel (transposed views), as the FFTs write and read them.
"""

import os
import sys
import threading
from functools import cache, lru_cache
from types import ModuleType

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def fft_workers() -> int:
    """Threads for a batch of FFTs: ``SPLEETER_THREADS`` when positive (0 means the default,
    as for the engines), else every core this process may run on."""
    threads = int(os.environ.get("SPLEETER_THREADS") or 0)
    if threads > 0:
        return threads
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else os.cpu_count() or 1


def _fft() -> ModuleType:
    import scipy.fft  # a no-op once prepare_fft's thread has imported it

    return scipy.fft


def prepare_fft() -> None:
    """Import ``scipy.fft`` (0.16 s) on a thread, while the caller decodes and loads its
    network (which wait on ffmpeg and OpenVINO with the GIL released); the first transform
    waits for it if it comes first."""
    if "scipy.fft" not in sys.modules:
        threading.Thread(target=_fft, name="spleeter-import-fft", daemon=True).start()


@cache
def hann_window(length: int) -> np.ndarray:
    """The periodic Hann window of ``length`` samples (``tf.signal.hann_window(periodic=True)``)."""
    window = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(length) / length)).astype(np.float32)
    window.flags.writeable = False
    return window


def frame_count(n_samples: int, frame_length: int, frame_step: int) -> int:
    """STFT frames of an ``n_samples`` waveform (front and end padding included)."""
    return -(-(n_samples + frame_length) // frame_step)


def frames_stft(padded: np.ndarray, frame_length: int, frame_step: int) -> np.ndarray:
    """STFT ``(n_frames, bins, channels)`` of an already padded ``(n, c)`` signal whose length
    is ``(n_frames - 1) * frame_step + frame_length``: one frame every ``frame_step`` samples."""
    by_channel = np.asarray(padded, dtype=np.float32).T
    frames = sliding_window_view(by_channel, frame_length, axis=-1)[:, ::frame_step]
    windowed = frames * hann_window(frame_length)  # (channels, n_frames, frame_length)
    spectrum = _fft().rfft(windowed, axis=-1, overwrite_x=True, workers=fft_workers())
    return np.moveaxis(spectrum.astype(np.complex64, copy=False), 0, -1)


def stft(waveform: np.ndarray, frame_length: int, frame_step: int) -> np.ndarray:
    """Complex64 STFT ``(n_frames, frame_length // 2 + 1, n_channels)`` of a ``(n, c)`` waveform."""
    n_samples = waveform.shape[0]
    frames = frame_count(n_samples, frame_length, frame_step)
    padded = np.zeros(((frames - 1) * frame_step + frame_length, waveform.shape[1]), np.float32)
    padded[frame_length : frame_length + n_samples] = waveform
    return frames_stft(padded, frame_length, frame_step)


def chunk_magnitude(
    waveform: np.ndarray, frame_length: int, frame_step: int, n_bins: int | None = None
) -> np.ndarray:
    """``|STFT|`` ``(frames, n_bins, c)`` float32 of a chunk taken from the middle of a file
    (training examples, pretraining features): upstream's ``compute_spectrogram_tf``, with no
    padding at either end (``1 + (n - frame_length) // frame_step`` frames, one every
    ``frame_step`` samples from the chunk's first sample); only the first ``n_bins`` bins."""
    n_bins = n_bins or frame_length // 2 + 1
    n_samples, n_channels = waveform.shape
    if n_samples < frame_length:
        return np.zeros((0, n_bins, n_channels), dtype=np.float32)
    frames = 1 + (n_samples - frame_length) // frame_step
    used = waveform[: (frames - 1) * frame_step + frame_length]
    return np.abs(frames_stft(used, frame_length, frame_step)[:, :n_bins, :])


def _overlap_add_frames(frames: np.ndarray, frame_step: int) -> np.ndarray:
    """Sum frames ``(..., n, frame_length)`` placed every ``frame_step`` samples:
    ``(..., (n - 1) * frame_step + frame_length)``."""
    *lead, n_frames, frame_length = frames.shape
    signal = np.zeros((*lead, (n_frames - 1) * frame_step + frame_length), np.float32)
    if frame_length % frame_step == 0:
        # Each hop-sized slice of every frame lands on a contiguous stretch: add them in bulk.
        hops = frames.reshape(*lead, n_frames, frame_length // frame_step, frame_step)
        for k in range(frame_length // frame_step):
            stretch = signal[..., k * frame_step : (k + n_frames) * frame_step]
            stretch.reshape(*lead, n_frames, frame_step)[...] += hops[..., k, :]
    else:
        for index in range(n_frames):
            signal[..., index * frame_step : index * frame_step + frame_length] += frames[
                ..., index, :
            ]
    return signal


@lru_cache(maxsize=16)
def _squared_window_sum(n_frames: int, frame_length: int, frame_step: int) -> np.ndarray:
    """Overlap-added squared windows of ``n_frames`` frames (the inverse's normaliser), with
    1 where they are too small to divide by: dividing by it is then one plain ``np.divide``
    (3x faster than masking it with ``where``, the same numbers)."""
    squared = np.broadcast_to(hann_window(frame_length) ** 2, (n_frames, frame_length))
    total = _overlap_add_frames(np.ascontiguousarray(squared), frame_step)
    total[total <= np.finfo(np.float32).tiny] = 1.0
    total.flags.writeable = False
    return total


def overlap_add(spectrum: np.ndarray, frame_length: int, frame_step: int) -> np.ndarray:
    """Inverse of :func:`frames_stft`: the ``((n_frames - 1) * frame_step + frame_length, c)``
    signal, each sample normalised by the squared windows of the frames present.

    Where every frame overlapping a sample is present (all but the first and last
    ``frame_length - frame_step`` samples), this equals upstream's overlap-add times 2/3.
    """
    n_frames = spectrum.shape[0]
    # Channels first, so that each inverse FFT and the window run along contiguous memory:
    # 2.3x faster than transforming along the strided bin axis (same numbers).
    by_channel = np.ascontiguousarray(np.moveaxis(spectrum, -1, 0))
    frames = _fft().irfft(by_channel, n=frame_length, axis=-1, workers=fft_workers())
    frames = frames.astype(np.float32, copy=False)  # (by_channel may be the caller's own)
    frames *= hann_window(frame_length)
    signal = np.ascontiguousarray(_overlap_add_frames(frames, frame_step).T)
    np.divide(signal, _squared_window_sum(n_frames, frame_length, frame_step)[:, None], out=signal)
    return signal


def istft(spectrum: np.ndarray, frame_length: int, frame_step: int, n_samples: int) -> np.ndarray:
    """Float32 waveform ``(n_samples, n_channels)`` from an STFT made by :func:`stft`."""
    return overlap_add(spectrum, frame_length, frame_step)[frame_length : frame_length + n_samples]


def blocks(frames: np.ndarray, T: int) -> np.ndarray:
    """Cut ``(n_frames, ...)`` into non-overlapping blocks of ``T`` frames, zero-padding the
    last one: ``(n_blocks, T, ...)`` float32 (the network's batches)."""
    n_frames = frames.shape[0]
    n_blocks = -(-n_frames // T)
    packed = np.zeros((n_blocks * T, *frames.shape[1:]), dtype=np.float32)
    packed[:n_frames] = frames
    return packed.reshape(n_blocks, T, *frames.shape[1:])


SILENCE_DB = -40.0
"""Bins this far below a chunk's loudest are silent for deep clustering: no label in training
(their dominant stem is noise; Hershey et al. left such bins out) and not clustered."""


def magnitude_blocks(spectrum: np.ndarray, T: int, F: int) -> np.ndarray:
    """Magnitudes of the first ``F`` bins, cut into non-overlapping blocks of ``T`` frames.

    The frame axis is zero-padded to a multiple of ``T``; the result is
    ``(n_blocks, T, F, n_channels)`` float32, the network's input.
    """
    frames, _, channels = spectrum.shape
    n_blocks = -(-frames // T)
    packed = np.zeros((n_blocks * T, F, channels), dtype=np.float32)
    np.abs(spectrum[:, :F, :], out=packed[:frames])  # no intermediate copy of the magnitudes
    return packed.reshape(n_blocks, T, F, channels)


def unblock(packed: np.ndarray, n_frames: int) -> np.ndarray:
    """Undo :func:`blocks`' partition: ``(n_blocks, T, ...)`` to ``(n_frames, ...)``."""
    return packed.reshape(-1, *packed.shape[2:])[:n_frames]
