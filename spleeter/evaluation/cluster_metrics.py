"""Metrics for unnamed sources (clusters), and the seed project's per-separation figures.

**Matching.** :func:`match_sources` pairs each reference with one estimate by the permutation
(an assignment, when the counts differ) maximising the summed SI-SDR (scipy's
``linear_sum_assignment``); :func:`matched_scores` then scores the pairs: SDR / SIR / SAR
(fast_bss_eval's exact solver via :func:`.metrics.bss_eval_sources`, whole signals, per
channel, averaged) and
SI-SDR. A reference left without an estimate (fewer clusters than references) is scored
against silence (-inf is reported as None).

**The seed's figures, exactly as its code computes them** (channel 0; n_fft 1024, hop 512):

- ``spectral_entropy_bits``: Shannon entropy in bits of ``p_f = sum_t |X| / sum_{t,f} |X|``
  (513 bins: at most log2(513) = 9.0 bits). What the seed's code calls "cluster entropy".
- ``hoyer_sparsity``: ``(sqrt(n) - |p|_1 / |p|_2) / (sqrt(n) - 1)`` on the same ``p``.
- ``energy_share``: ``E_i / E_mix``, ``E = sum x^2``; and their sum over clusters.
- ``reconstruction_mse``: MSE between the mixture and the sum of the decoded clusters.

**The seed README's "cluster entropy"** is another quantity: ``frame_assignment_entropy_bits``,
the entropy in bits of the share of latent frames each cluster holds (0: every frame in one
cluster; log2 K: evenly spread). Named apart so nobody mixes the two up. Neither measures
separation quality: SDR against true stems does.
"""

from typing import Any

import numpy as np

SEED_N_FFT = 1024
SEED_HOP = 512


def _spectral_distribution(signal: np.ndarray) -> np.ndarray:
    x = np.asarray(signal, np.float64)
    if x.ndim == 2:
        x = x[:, 0]
    if len(x) < SEED_N_FFT:
        x = np.pad(x, (0, SEED_N_FFT - len(x)))
    frames = np.lib.stride_tricks.sliding_window_view(x, SEED_N_FFT)[::SEED_HOP]
    magnitude = np.abs(np.fft.rfft(frames * np.hanning(SEED_N_FFT), axis=-1))
    total = magnitude.sum()
    per_bin = magnitude.sum(axis=0)
    return per_bin / total if total > 0 else np.full(per_bin.shape, 1.0 / per_bin.size)


def spectral_entropy_bits(signal: np.ndarray) -> float:
    """The seed code's "cluster entropy": the spectral distribution's entropy in bits."""
    p = _spectral_distribution(signal)
    p = p[p > 0]
    return float(-np.sum(p * np.log2(p)))


def hoyer_sparsity(signal: np.ndarray) -> float:
    """Hoyer sparsity of the spectral distribution (0: flat, 1: one bin)."""
    p = _spectral_distribution(signal)
    n = p.size
    l2 = float(np.sqrt(np.sum(p**2)))
    return float((np.sqrt(n) - p.sum() / l2) / (np.sqrt(n) - 1)) if l2 > 0 else 0.0


def frame_assignment_entropy_bits(counts: np.ndarray) -> float:
    """The seed README's "cluster entropy": entropy in bits of the frames' spread over the
    clusters (``counts``: frames per cluster)."""
    counts = np.asarray(counts, np.float64)
    total = counts.sum()
    if total <= 0:
        return 0.0
    p = counts[counts > 0] / total
    return float(-np.sum(p * np.log2(p)))


def energy_shares(parts: list[np.ndarray], mixture: np.ndarray) -> list[float]:
    """Each part's energy over the mixture's (the seed's ``E_i / E_mix``)."""
    mix = float(np.sum(np.asarray(mixture, np.float64) ** 2))
    if mix <= 0:
        return [0.0 for _ in parts]
    return [float(np.sum(np.asarray(p, np.float64) ** 2)) / mix for p in parts]


def reconstruction_mse(mixture: np.ndarray, decoded: list[np.ndarray]) -> float:
    """MSE between the mixture and the sum of the decoded clusters."""
    total = np.sum([np.asarray(d, np.float64) for d in decoded], axis=0)
    return float(np.mean((np.asarray(mixture, np.float64) - total) ** 2))


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Scale-invariant SDR in dB over all channels (-inf for a silent estimate)."""
    r = np.asarray(reference, np.float64).ravel()
    e = np.asarray(estimate, np.float64).ravel()
    energy = float(np.dot(r, r))
    if energy <= 0:
        return float("nan")
    target = np.dot(e, r) / energy * r
    noise = e - target
    tn, nn = float(np.dot(target, target)), float(np.dot(noise, noise))
    if tn <= 0:
        return float("-inf")
    return 10 * np.log10(tn / max(nn, 1e-20))


def match_sources(
    references: dict[str, np.ndarray], estimates: dict[str, np.ndarray]
) -> dict[str, str | None]:
    """``{reference: estimate or None}`` maximising the summed SI-SDR."""
    from scipy.optimize import linear_sum_assignment

    names, found = list(references), list(estimates)
    scores = np.array([[si_sdr(references[r], estimates[e]) for e in found] for r in names])
    scores = np.nan_to_num(scores, nan=-1e3, neginf=-1e3, posinf=1e3)
    rows, columns = linear_sum_assignment(-scores) if found else ([], [])
    matched: dict[str, str | None] = dict.fromkeys(names)
    for row, column in zip(rows, columns, strict=True):
        matched[names[row]] = found[column]
    return matched


def matched_scores(
    references: dict[str, np.ndarray], estimates: dict[str, np.ndarray]
) -> dict[str, dict[str, Any]]:
    """Per reference: its matched estimate and SDR, SIR, SAR, SI-SDR (dB)."""
    from .metrics import bss_eval_sources

    matched = match_sources(references, estimates)
    names = list(references)
    n = min(len(next(iter(references.values()))), len(next(iter(estimates.values()))))
    silent = np.zeros_like(next(iter(references.values()))[:n])
    chosen = [estimates[matched[r]][:n] if matched[r] else silent for r in names]
    result: dict[str, dict[str, Any]] = {}
    channels = np.asarray(references[names[0]]).shape[1]
    per_channel = []
    for c in range(channels):
        ref = np.stack([np.asarray(references[r][:n, c], np.float64) for r in names])
        est = np.stack([np.asarray(e[:, c], np.float64) + 1e-9 for e in chosen])
        per_channel.append(bss_eval_sources(ref, est))
    sdr, sir, sar = (np.mean([pc[k] for pc in per_channel], axis=0) for k in range(3))
    for k, r in enumerate(names):
        result[r] = {
            "estimate": matched[r],
            "SDR": float(sdr[k]),
            "SIR": float(sir[k]),
            "SAR": float(sar[k]),
            "SI-SDR": si_sdr(references[r][:n], chosen[k]),
        }
    return result


def separation_figures(
    mixture: np.ndarray,
    decoded: list[np.ndarray],
    sources: list[np.ndarray],
    frame_counts: np.ndarray,
) -> dict[str, Any]:
    """The seed's table for one separation (decoded clusters) plus the frame spread."""
    shares = energy_shares(decoded, mixture)
    return {
        "reconstruction_mse": reconstruction_mse(mixture, decoded),
        "spectral_entropy_bits": [spectral_entropy_bits(d) for d in decoded],
        "hoyer_sparsity": [hoyer_sparsity(d) for d in decoded],
        "energy_share": shares,
        "energy_share_sum": float(sum(shares)),
        "masked_energy_share": energy_shares(sources, mixture),
        "frame_assignment_entropy_bits": frame_assignment_entropy_bits(frame_counts),
    }
