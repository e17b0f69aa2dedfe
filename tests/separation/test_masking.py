"""Ratio masks, their extension above F, and the Wiener filter."""

import numpy as np
import pytest

from spleeter import SpleeterError
from spleeter.separation.masking import (
    EPSILON,
    apply_mask,
    ratio_masks,
    wiener_filter,
    zero_extend,
)


@pytest.fixture
def estimates():
    rng = np.random.default_rng(3)
    return {
        f"s{k}_spectrogram": rng.uniform(0, 2, (2, 8, 16, 2)).astype(np.float32) for k in range(3)
    }


def test_ratio_masks_follow_upstream_formula(estimates):
    masks = ratio_masks(estimates, 2)
    total = sum(y**2 for y in estimates.values()) + EPSILON
    for name, y in estimates.items():
        np.testing.assert_allclose(masks[name], (y**2 + EPSILON / 3) / total, rtol=1e-6)
    np.testing.assert_allclose(sum(masks.values()), 1.0, rtol=1e-6)


def test_silent_estimates_give_equal_shares():
    zeros = {name: np.zeros((1, 4, 4, 2), np.float32) for name in "ab"}
    for mask in ratio_masks(zeros, 2).values():
        np.testing.assert_allclose(mask, 0.5)


def test_exponent_one(estimates):
    masks = ratio_masks(estimates, 1)
    total = sum(estimates.values())
    name = next(iter(estimates))
    np.testing.assert_allclose(masks[name], estimates[name] / total, rtol=1e-5)


def test_zero_and_average_extension(estimates):
    mask = next(iter(ratio_masks(estimates, 2).values()))[0]  # (8 frames, 16 bins, 2)
    rng = np.random.default_rng(4)
    spectrum = (rng.normal(size=(8, 40, 2)) + 1j * rng.normal(size=(8, 40, 2))).astype(np.complex64)
    zeros = apply_mask(spectrum, mask, "zeros")
    assert zeros.shape == (8, 40, 2) and zeros.dtype == np.complex64
    np.testing.assert_array_equal(zeros[:, :16], spectrum[:, :16] * mask)
    assert not zeros[:, 16:].any()
    average = apply_mask(spectrum, mask, "average")
    np.testing.assert_array_equal(average[:, :16], spectrum[:, :16] * mask)
    np.testing.assert_allclose(
        average[:, 16:], spectrum[:, 16:] * mask.mean(axis=-2, keepdims=True), rtol=1e-6
    )


def test_unknown_extension(estimates):
    mask = next(iter(estimates.values()))[0]
    with pytest.raises(SpleeterError, match="Invalid mask_extension parameter 'mirror'"):
        apply_mask(np.zeros((8, 40, 2), np.complex64), mask, "mirror")


def test_wiener_filter_output_sums_to_mixture():
    rng = np.random.default_rng(5)
    mixture = (rng.normal(size=(30, 9, 2)) + 1j * rng.normal(size=(30, 9, 2))).astype(np.complex64)
    magnitudes = rng.uniform(0.1, 1, (30, 9, 2, 3)).astype(np.float32)
    filtered = wiener_filter(magnitudes, mixture)
    assert filtered.shape == (30, 9, 2, 3) and filtered.dtype == np.complex64
    # the Wiener gains of all sources add up to identity (up to norbert's regularisation)
    assert np.abs(filtered.sum(axis=-1) - mixture).max() < 1e-2 * np.abs(mixture).max()
    assert zero_extend(magnitudes[..., 0], 12).shape == (30, 12, 2)


def test_two_pass_wiener_equals_norbert_on_the_whole_signal():
    """Accumulating statistics segment by segment, then filtering each segment, gives
    norbert.wiener's result on the whole signal (its covariances span every frame)."""
    from spleeter.separation.masking import WienerStatistics

    rng = np.random.default_rng(1)
    mixture = ((rng.normal(size=(300, 65, 2)) + 1j * rng.normal(size=(300, 65, 2))) * 30).astype(
        np.complex64
    )
    magnitudes = rng.uniform(0, 20, (300, 65, 2, 3)).astype(np.float32)
    whole = wiener_filter(magnitudes, mixture.copy())
    statistics = WienerStatistics()
    cuts = [0, 64, 128, 200, 300]
    for start, stop in zip(cuts, cuts[1:], strict=False):
        statistics.accumulate(magnitudes[start:stop], mixture[start:stop])
    segmented = np.concatenate(
        [
            statistics.filter(magnitudes[a:b], mixture[a:b])
            for a, b in zip(cuts, cuts[1:], strict=False)
        ]
    )
    assert np.abs(segmented - whole).max() < 1e-6 * np.abs(whole).max()
    # a single segment's statistics would not do: the filter depends on every frame
    alone = WienerStatistics()
    alone.accumulate(magnitudes[:64], mixture[:64])
    assert np.abs(alone.filter(magnitudes[:64], mixture[:64]) - whole[:64]).max() > 1e-3
