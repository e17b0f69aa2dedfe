"""From the network's magnitude estimates to separated STFTs: ratio masks or a Wiener filter.

The network estimates each instrument's magnitude ``y_i`` on the first ``F`` bins. Upstream turns
them into ratio masks ``(y_i^p + eps/n) / (sum_j y_j^p + eps)`` (``p`` = ``separation_exponent``),
extends the masks to every STFT bin (``mask_extension``: zeros or the per-frame average) and
multiplies the mixture's complex STFT by them. With ``MWF`` it instead runs norbert's
multichannel Wiener filter on the zero-extended magnitudes.
"""

from collections.abc import Mapping

import numpy as np

from .. import SpleeterError
from ..utils.schema import MASK_EXTENSIONS

EPSILON = 1e-10
"""Regulariser of the ratio masks (upstream's ``EstimatorSpecBuilder.EPSILON``)."""


def ratio_masks(
    estimates: Mapping[str, np.ndarray], separation_exponent: float
) -> dict[str, np.ndarray]:
    """Ratio masks (summing to one) from magnitude estimates of equal shape, float32."""
    powered = {
        name: np.power(y, separation_exponent, dtype=np.float32) for name, y in estimates.items()
    }
    total = np.sum(list(powered.values()), axis=0, dtype=np.float32) + np.float32(EPSILON)
    share = np.float32(EPSILON / len(powered))
    return {name: (p + share) / total for name, p in powered.items()}


def apply_mask(spectrum: np.ndarray, mask: np.ndarray, mask_extension: str) -> np.ndarray:
    """The mixture's STFT ``(frames, bins, C)`` times a mask ``(frames, F, C)`` extended to
    every bin: ``zeros`` silences the bins above ``F``; ``average`` applies the mask's mean over
    its ``F`` bins there (per frame and channel).

    The result is complex64 of the spectrum's shape, laid out channel by channel in memory
    (a transposed view), as the inverse STFT reads it: no extended mask is built, the zero
    bins are not multiplied, and the inverse STFT needs no copy.
    """
    if mask_extension not in MASK_EXTENSIONS:
        raise SpleeterError(
            f"Invalid mask_extension parameter {mask_extension!r} (expected one of "
            f"{', '.join(MASK_EXTENSIONS)})"
        )
    F = mask.shape[-2]
    by_channel = np.moveaxis(spectrum, -1, 0)
    masked = np.empty(by_channel.shape, np.complex64)
    np.multiply(by_channel[..., :F], np.moveaxis(mask, -1, 0), out=masked[..., :F])
    if mask_extension == "zeros":
        masked[..., F:] = 0
    else:
        average = mask.mean(axis=-2, dtype=np.float32).T[..., None]  # (C, frames, 1)
        np.multiply(by_channel[..., F:], average, out=masked[..., F:])
    return np.moveaxis(masked, 0, -1)


def zero_extend(estimate: np.ndarray, n_bins: int) -> np.ndarray:
    """Pad a magnitude estimate ``(..., F, C)`` with zero bins up to ``n_bins``."""
    pad = [(0, 0)] * estimate.ndim
    pad[-2] = (0, n_bins - estimate.shape[-2])
    return np.pad(estimate, pad)


def wiener_filter(estimates: np.ndarray, mixture_stft: np.ndarray) -> np.ndarray:
    """Multichannel Wiener filter (norbert, one EM iteration with a soft-mask start).

    Args:
        estimates: magnitudes ``(n_frames, n_bins, n_channels, n_sources)``.
        mixture_stft: complex ``(n_frames, n_bins, n_channels)``.

    Returns:
        complex64 ``(n_frames, n_bins, n_channels, n_sources)``.
    """
    import norbert

    return norbert.wiener(estimates, mixture_stft).astype(np.complex64, copy=False)


class WienerStatistics:
    """norbert's Wiener filter (soft-mask start, one EM iteration) computed in two passes.

    ``norbert.wiener`` models each source with a spatial covariance matrix per frequency bin,
    estimated over *all* frames, and scales everything by the mixture's peak. Pass one feeds
    every segment to :meth:`accumulate` (sums over frames only); pass two filters each segment
    with :meth:`filter`, which then equals ``norbert.wiener`` on the whole signal, segment by
    segment, in memory bounded by the segment.
    """

    def __init__(self) -> None:
        self._covariances: np.ndarray | None = None  # sum over frames of y y^H: (bins, C, C, J)
        self._powers: np.ndarray | None = None  # sum over frames of mean_c |y|^2: (bins, J)
        self._peak = 0.0

    def accumulate(self, estimates: np.ndarray, mixture_stft: np.ndarray) -> None:
        """Add a segment: magnitudes ``(frames, bins, C, J)``, mixture ``(frames, bins, C)``."""
        import norbert

        initial = norbert.softmask(estimates, mixture_stft, eps=_EPS)
        covariances = np.einsum("tfcj,tfdj->fcdj", initial, np.conj(initial))
        powers = np.mean(np.abs(initial) ** 2, axis=2).sum(axis=0)
        if self._covariances is None:
            self._covariances, self._powers = covariances, powers
        else:
            self._covariances += covariances
            self._powers += powers
        self._peak = max(self._peak, float(np.abs(mixture_stft).max(initial=0.0)))

    def filter(self, estimates: np.ndarray, mixture_stft: np.ndarray) -> np.ndarray:
        """Separated STFTs ``(frames, bins, C, J)`` complex64 of a segment (after pass one)."""
        import norbert

        if self._covariances is None or self._powers is None:
            raise SpleeterError("the Wiener filter needs a first pass over the whole signal")
        scale = max(1.0, self._peak / 10.0)
        mixture = mixture_stft / np.complex64(scale)
        initial = norbert.softmask(estimates, mixture_stft, eps=_EPS) / np.complex64(scale)
        powers = np.mean(np.abs(initial) ** 2, axis=2)
        weights = _EPS * scale**2 + self._powers
        spatial = (self._covariances / weights[:, None, None, :]).astype(np.complex64)
        channels = mixture.shape[-1]
        regularisation = np.sqrt(_EPS) * np.eye(channels, dtype=np.complex64)
        mix_covariance = norbert.get_mix_model(powers, spatial) + regularisation
        inverse = norbert._invert(mix_covariance.astype(np.complex64), _EPS)
        separated = np.empty(initial.shape, np.complex64)
        for j in range(initial.shape[-1]):
            gain = norbert.wiener_gain(powers[..., j], spatial[..., j], inverse)
            separated[..., j] = norbert.apply_filter(mixture, gain)
        return separated * np.complex64(scale)


_EPS = float(np.finfo(np.float32).eps)
"""norbert's default regulariser for float32 STFTs."""
