"""STFT, inverse STFT and blocking on upstream's frame grid, checked against tf.signal."""

import numpy as np
import pytest

from spleeter.audio.spectrogram import frame_count, istft, magnitude_blocks, stft, unblock
from spleeter.engines.tensorflow import import_tensorflow

N, H = 4096, 1024


@pytest.fixture(scope="module")
def waveform(musdb_stems):
    return musdb_stems["mixture"][:100_000]


def upstream_stft(waveform):
    """Upstream's forward transform, written with tf.signal as its model builder did."""
    tf = import_tensorflow()
    padded = tf.concat([tf.zeros((N, waveform.shape[1])), waveform], 0)
    window = lambda length, dtype: tf.signal.hann_window(length, periodic=True, dtype=dtype)  # noqa: E731
    spectrum = tf.signal.stft(tf.transpose(padded), N, H, window_fn=window, pad_end=True)
    return tf.transpose(spectrum, perm=[1, 2, 0]).numpy()


def upstream_istft(spectrum, n_samples):
    tf = import_tensorflow()
    window = lambda length, dtype: tf.signal.hann_window(length, periodic=True, dtype=dtype)  # noqa: E731
    signal = tf.signal.inverse_stft(tf.transpose(spectrum, perm=[2, 0, 1]), N, H, window_fn=window)
    return tf.transpose(signal * (2.0 / 3.0)).numpy()[N : N + n_samples]


def test_stft_matches_tensorflow_grid(waveform):
    ours = stft(waveform, N, H)
    theirs = upstream_stft(waveform)
    assert ours.shape == theirs.shape == (frame_count(len(waveform), N, H), N // 2 + 1, 2)
    assert ours.dtype == np.complex64
    assert np.abs(ours - theirs).max() < 1e-6 * np.abs(theirs).max()


def test_istft_matches_tensorflow(waveform):
    spectrum = upstream_stft(waveform)
    rng = np.random.default_rng(0)
    masked = (spectrum * rng.uniform(0, 1, spectrum.shape)).astype(np.complex64)
    np.testing.assert_allclose(
        istft(masked, N, H, len(waveform)), upstream_istft(masked, len(waveform)), atol=2e-6
    )


@pytest.mark.parametrize("n_samples", [1, 1023, 1024, 4096, 44_100, 100_000])
def test_round_trip_is_exact_for_every_length(waveform, n_samples):
    x = waveform[:n_samples]
    y = istft(stft(x, N, H), N, H, n_samples)
    assert y.shape == x.shape and y.dtype == np.float32
    np.testing.assert_allclose(y, x, atol=1e-5)


def test_frame_count_is_upstream_ceil():
    assert frame_count(479_832, N, H) == 473  # upstream's audio_example.mp3: 1 block of 512
    assert frame_count(1024, N, H) == 5
    assert frame_count(1025, N, H) == 6


def test_blocks_pad_with_zeros_and_unblock_back(waveform):
    spectrum = stft(waveform, N, H)
    blocks = magnitude_blocks(spectrum, T=64, F=1024)
    frames = spectrum.shape[0]
    assert blocks.shape == (-(-frames // 64), 64, 1024, 2)
    np.testing.assert_array_equal(unblock(blocks, frames), np.abs(spectrum[:, :1024]))
    assert not blocks.reshape(-1, 1024, 2)[frames:].any()


@pytest.mark.parametrize("threads", ["0", "1", "3"])
def test_any_thread_setting_gives_the_same_transforms(waveform, threads, monkeypatch):
    reference = stft(waveform, 4096, 1024)
    monkeypatch.setenv("SPLEETER_THREADS", threads)  # 0: the default, as for the engines
    spectrum = stft(waveform, 4096, 1024)
    np.testing.assert_array_equal(spectrum, reference)
    back = istft(spectrum, 4096, 1024, waveform.shape[0])
    assert np.abs(back - waveform).max() < 1e-5 * np.abs(waveform).max()
