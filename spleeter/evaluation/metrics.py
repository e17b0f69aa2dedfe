"""Framewise separation scores of one track, under two labelled protocols.

``museval-v4``
    museval's BSS Eval v4 (``museval.evaluate(..., mode="v4")``): multichannel *images*,
    distortion filters fitted once on the whole track, then SDR/ISR/SIR/SAR per window. This is
    what upstream ``spleeter evaluate`` and the published MUSDB18 tables report. Its SDR does
    not filter the reference: it is the plain signal-to-error ratio of the window.

``fast_bss_eval``
    fast_bss_eval's ``bss_eval_sources`` (512-tap distortion filter fitted per window), computed
    per channel and averaged over channels in dB, plus SI-SDR (scale-invariant SDR, a single
    gain instead of a filter). Much faster; not the numbers of published tables.

Both use museval's framing (1 s windows and hops by default; a trailing partial window is
dropped) and museval's silence rule: a window in which any reference or any estimate is
all-zero gets NaN for every target (medians ignore NaN). With ``fast_bss_eval``, a channel in
which a reference or an estimate is all-zero is left out of that window's channel average.
A source that is silent over the whole track therefore gives NaN everywhere, in both protocols
(museval itself would raise an error).

Numerical corner cases, as each protocol defines them: an exact estimate gives an infinite
or very large ratio (``+inf`` becomes NaN in museval's JSON, see :mod:`.report`); the
``fast_bss_eval`` ratios are computed from squared cosines clipped to ``[0, 1]``, so they are
``+inf`` when the estimate is exact to machine precision.

Two compatibility fixes for numpy >= 2, both local to this module (no library is modified):

* fast_bss_eval 0.1.4's ``bss_eval_sources`` without permutation calls
  ``np.linalg.solve(A, b)`` with ``b`` of shape ``(..., M)``; numpy 2 no longer treats such a
  ``b`` as a stack of vectors and raises. :func:`bss_eval_sources` asks the same library
  function for the *pairwise* statistics instead, whose right-hand sides are matrices
  ``(..., M, K)`` (the same solve, broadcast as numpy 2 expects), and reads the diagonal
  (reference ``j`` against estimate ``j``). The extra cost is negligible: the matrices to
  factorise are the same.
* museval 0.4.1's least-squares fallback is ``except np.linalg.linalg.LinAlgError``; numpy
  2.4 removed ``np.linalg.linalg``, so a singular system would raise ``AttributeError``
  instead of falling back. :func:`museval_v4` restores that one name for the duration of the
  call (:func:`_numpy_linalg_alias`). museval's refusal of all-zero sources is handled by
  returning NaN before calling it (see above).
"""

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np

from .. import SpleeterError
from . import FAST_PROTOCOL, MUSEVAL_PROTOCOL, PROTOCOL_METRICS

WINDOW_SECONDS: float = 1.0
"""Window length of the framewise scores (museval's default)."""

HOP_SECONDS: float = 1.0
"""Hop between windows (museval's default: no overlap)."""

FILTER_LENGTH: int = 512
"""Taps of the distortion filters (BSS Eval's default, in both protocols)."""

BATCH_ITEMS: int = 4
"""(window, channel) pairs solved together by fast_bss_eval (bounds memory: each needs a
``(n_sources x 512)^2`` float64 matrix, 33 MB for 4 sources)."""


@dataclass
class TrackScores:
    """Framewise scores of one track's targets under one protocol."""

    protocol: str
    """``museval-v4`` or ``fast_bss_eval``."""
    window: float
    """Window length in seconds."""
    hop: float
    """Hop in seconds (window ``k`` starts at ``k * hop``)."""
    targets: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    """``{instrument: {metric: float64 array (n_windows,)}}``."""

    @property
    def metrics(self) -> tuple[str, ...]:
        """This protocol's metric names."""
        return PROTOCOL_METRICS[self.protocol]


def frame_slices(n_samples: int, window: int, hop: int) -> list[slice]:
    """museval's windows: ``floor((n - window + hop) / hop)`` full windows, or one window over
    the whole signal when it is shorter than ``window``."""
    if window <= 0 or hop <= 0:
        raise ValueError(f"window and hop must be positive (got {window}, {hop})")
    if window >= n_samples:
        return [slice(0, n_samples)]
    count = (n_samples - window + hop) // hop
    return [slice(k * hop, min(k * hop + window, n_samples)) for k in range(count)]


def silent_sources(sources: np.ndarray) -> np.ndarray:
    """museval's silence test for ``(n_sources, n_samples, n_channels)``: the channel sum is
    zero at every sample. Returns one boolean per source."""
    return np.all(np.sum(sources, axis=2) == 0, axis=1)


def match_length(estimate: np.ndarray, n_samples: int) -> np.ndarray:
    """Truncate ``estimate`` (samples first) to ``n_samples``, or pad its end with zeros
    (museval's ``pad_or_truncate``)."""
    if estimate.shape[0] >= n_samples:
        return estimate[:n_samples]
    padding = [(0, n_samples - estimate.shape[0])] + [(0, 0)] * (estimate.ndim - 1)
    return np.pad(estimate, padding)


def evaluation_groups(names: list[str]) -> list[tuple[list[str], list[str]]]:
    """The sets of targets BSS Eval is run on together, and which of them each reports.

    As museval's ``eval_mus_track``: when both ``vocals`` and ``accompaniment`` are targets,
    the accompaniment is left out of the joint evaluation (it overlaps the other stems) and
    the vocals/accompaniment pair is evaluated on its own, which gives both their scores.
    """
    if "vocals" in names and "accompaniment" in names:
        rest = [name for name in names if name != "accompaniment"]
        groups = []
        if len(rest) >= 2:
            groups.append((rest, [name for name in rest if name != "vocals"]))
        groups.append((["vocals", "accompaniment"], ["vocals", "accompaniment"]))
        return groups
    return [(list(names), list(names))]


def score_track(
    references: dict[str, np.ndarray],
    estimates: dict[str, np.ndarray],
    sample_rate: int,
    protocol: str,
    window: float = WINDOW_SECONDS,
    hop: float = HOP_SECONDS,
) -> TrackScores:
    """Framewise scores of every target of a track.

    Args:
        references: ``{instrument: (n_samples, n_channels)}``, all of one length.
        estimates: the same instruments; each is cut or zero-padded to the reference length.
        sample_rate: of both.
        protocol: ``museval-v4`` or ``fast_bss_eval``.
        window, hop: in seconds.

    Raises:
        SpleeterError: missing estimate, references of different shapes, channel mismatch.
    """
    if protocol not in PROTOCOL_METRICS:
        raise ValueError(f"unknown protocol {protocol!r}")
    names = list(references)
    missing = [name for name in names if name not in estimates]
    if missing:
        raise SpleeterError(f"no estimate for {', '.join(missing)}")
    shapes = {np.shape(references[name]) for name in names}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise SpleeterError(f"references must share one (samples, channels) shape, got {shapes}")
    n_samples, n_channels = next(iter(shapes))
    for name in names:
        if np.ndim(estimates[name]) != 2 or np.shape(estimates[name])[1] != n_channels:
            raise SpleeterError(
                f"estimate {name} has shape {np.shape(estimates[name])}, its reference "
                f"has {n_channels} channel(s)"
            )
    win, step = int(window * sample_rate), int(hop * sample_rate)
    compute = museval_v4 if protocol == MUSEVAL_PROTOCOL else fast_bss_eval_scores
    targets: dict[str, dict[str, np.ndarray]] = {}
    for evaluated, reported in evaluation_groups(names):
        refs = np.stack([np.asarray(references[name], np.float64) for name in evaluated])
        ests = np.stack(
            [match_length(np.asarray(estimates[name], np.float64), n_samples) for name in evaluated]
        )
        scores = compute(refs, ests, win, step)
        for index, name in enumerate(evaluated):
            if name in reported:
                targets[name] = {metric: scores[metric][index] for metric in scores}
    return TrackScores(protocol, window, hop, targets)  # museval's order (see groups)


def _nan_scores(metrics: tuple[str, ...], n_sources: int, n_windows: int) -> dict:
    return {metric: np.full((n_sources, n_windows), np.nan) for metric in metrics}


@contextmanager
def _numpy_linalg_alias() -> Iterator[None]:
    """Provide ``np.linalg.linalg.LinAlgError`` (removed in numpy 2.4) while museval runs."""
    if "linalg" in vars(np.linalg):
        yield
        return
    np.linalg.linalg = SimpleNamespace(LinAlgError=np.linalg.LinAlgError)  # type: ignore[attr-defined]
    try:
        yield
    finally:
        del np.linalg.linalg  # type: ignore[attr-defined]


def museval_v4(
    references: np.ndarray, estimates: np.ndarray, window: int, hop: int
) -> dict[str, np.ndarray]:
    """museval's BSS Eval v4 scores of ``(n_sources, n_samples, n_channels)`` arrays.

    Returns ``{"SDR", "SIR", "SAR", "ISR": (n_sources, n_windows)}``; all NaN when a source is
    silent over the whole signal (museval would raise).
    """
    import museval

    n_sources, n_samples = references.shape[:2]
    if silent_sources(references).any() or silent_sources(estimates).any():
        n_windows = len(frame_slices(n_samples, window, hop))
        return _nan_scores(PROTOCOL_METRICS[MUSEVAL_PROTOCOL], n_sources, n_windows)
    with _numpy_linalg_alias():
        sdr, isr, sir, sar = museval.evaluate(references, estimates, win=window, hop=hop)
    return {"SDR": sdr, "SAR": sar, "SIR": sir, "ISR": isr}


def _ratio_db(coherence: np.ndarray) -> np.ndarray:
    """``10 log10(c / (1 - c))`` for a squared cosine ``c`` (clipped to ``[0, 1]``)."""
    coherence = np.clip(coherence, 0.0, 1.0)
    with np.errstate(divide="ignore"):
        return 10.0 * (np.log10(coherence) - np.log10(1.0 - coherence))


def bss_eval_sources(
    references: np.ndarray, estimates: np.ndarray, filter_length: int = FILTER_LENGTH
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SDR, SIR and SAR of estimate ``j`` against reference ``j`` (no permutation).

    fast_bss_eval's ``bss_eval_sources(..., compute_permutation=False)`` with its exact
    solver, made to work on numpy >= 2 (see the module docstring): the library's pairwise
    square cosines, diagonal taken.

    Args:
        references, estimates: ``(..., n_sources, n_samples)``.

    Returns:
        Three ``(..., n_sources)`` arrays in dB.

    Raises:
        numpy.linalg.LinAlgError: a singular system (e.g. an all-zero reference).
    """
    from fast_bss_eval.numpy import square_cosine_metrics

    coh_sdr, coh_sar = square_cosine_metrics(
        references, estimates, filter_length=filter_length, pairwise=True
    )
    diagonal = np.arange(references.shape[-2])
    coh_sdr = coh_sdr[..., diagonal, diagonal]
    coh_sar = coh_sar[..., 0, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        coh_sir = coh_sdr / coh_sar
    return _ratio_db(coh_sdr), _ratio_db(coh_sir), _ratio_db(coh_sar)


def si_sdr(references: np.ndarray, estimates: np.ndarray) -> np.ndarray:
    """Scale-invariant SDR of estimate ``j`` against reference ``j``, ``(..., n_sources)``.

    fast_bss_eval's SI-SDR (the mean is not removed, as in its default and in BSS Eval).
    """
    from fast_bss_eval.numpy import si_sdr_loss

    with np.errstate(divide="ignore"):
        return -si_sdr_loss(estimates, references, pairwise=False)


def fast_bss_eval_scores(
    references: np.ndarray,
    estimates: np.ndarray,
    window: int,
    hop: int,
    filter_length: int = FILTER_LENGTH,
) -> dict[str, np.ndarray]:
    """fast_bss_eval scores of ``(n_sources, n_samples, n_channels)`` arrays, per window.

    Returns ``{"SDR", "SIR", "SAR", "SI-SDR": (n_sources, n_windows)}``: per channel, then the
    mean over the usable channels in dB.
    """
    n_sources, n_samples, n_channels = references.shape
    slices = frame_slices(n_samples, window, hop)
    metrics = PROTOCOL_METRICS[FAST_PROTOCOL]
    per_channel = {m: np.full((n_sources, len(slices), n_channels), np.nan) for m in metrics}
    items: list[tuple[int, int]] = []
    for index, frame in enumerate(slices):
        refs, ests = references[:, frame], estimates[:, frame]
        if silent_sources(refs).any() or silent_sources(ests).any():
            continue
        for channel in range(n_channels):
            if (refs[..., channel] == 0).all(axis=1).any():
                continue
            if (ests[..., channel] == 0).all(axis=1).any():
                continue
            items.append((index, channel))
    for start in range(0, len(items), BATCH_ITEMS):
        batch = items[start : start + BATCH_ITEMS]
        refs = np.stack([references[:, slices[t], c] for t, c in batch])
        ests = np.stack([estimates[:, slices[t], c] for t, c in batch])
        try:
            values = _fast_batch(refs, ests, filter_length)
        except np.linalg.LinAlgError:
            values = _fast_one_by_one(refs, ests, filter_length)
        for k, (t, c) in enumerate(batch):
            for metric in metrics:
                per_channel[metric][:, t, c] = values[metric][k]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows stay NaN
        return {metric: np.nanmean(per_channel[metric], axis=-1) for metric in metrics}


def _fast_batch(refs: np.ndarray, ests: np.ndarray, filter_length: int) -> dict[str, np.ndarray]:
    sdr, sir, sar = bss_eval_sources(refs, ests, filter_length)
    return {"SDR": sdr, "SAR": sar, "SIR": sir, "SI-SDR": si_sdr(refs, ests)}


def _fast_one_by_one(
    refs: np.ndarray, ests: np.ndarray, filter_length: int
) -> dict[str, np.ndarray]:
    """The batch item by item; an item whose system is singular gets NaN."""
    metrics = PROTOCOL_METRICS[FAST_PROTOCOL]
    values = {metric: np.full(refs.shape[:2], np.nan) for metric in metrics}
    for k in range(refs.shape[0]):
        try:
            one = _fast_batch(refs[k : k + 1], ests[k : k + 1], filter_length)
        except np.linalg.LinAlgError:
            continue
        for metric in metrics:
            values[metric][k] = one[metric][0]
    return values
