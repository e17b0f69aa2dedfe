"""The embedding family: sources from clusters of time-frequency bins (deep clustering).

For networks that give every bin ``(t, f)`` of the mixture an embedding (``dc.unet_embedding``,
trained on stems by ``spleeter train`` with the deep clustering objective). Unlike the
autoencoder's latent frames, bins can split two instruments that sound at the same time.

1. **Pass one** (``observe``): the network embeds the segment's magnitude blocks; the bins that
   carry sound (within :data:`SILENCE_DB` of their ``T``-frame block's loudest, as in a
   training chunk; a silent block gives none) go into a bounded, seeded sample
   (:class:`~.clustering.FrameSample`, ``cluster.max_frames``) with their mixture energy.
2. ``sources()`` fits the clusterer on the sample (k-means by default; the cluster family's
   agglomerative and DBSCAN, and its estimates of ``K``, work the same), clusters numbered by
   decreasing energy: ``source_1 .. source_K``.
3. **Pass two** (``separate``): every bin's soft mask is its posterior under a Gaussian mixture
   with the fitted centres, equal weights and the sample's pooled within-cluster variance (so
   the masks of a bin sum to one and the sources to the mixture). Bins above ``F`` take the
   masks of bin ``F - 1``. With ``mwf`` the masked magnitudes start norbert's multichannel
   Wiener filter, its statistics taken over each segment (about 12 s; the clusters are only
   known after pass one, and a whole-track filter would need a third pass). Without ``mwf``
   the result does not depend on the segment size: the sample takes the same bins in the same
   order, and the masks are bin-local. The network runs in both passes (embeddings are not
   kept between them, so memory stays bounded).
"""

from collections.abc import Callable
from typing import Any

import numpy as np

from ..audio.spectrogram import SILENCE_DB, magnitude_blocks, unblock
from ..engines import Engine
from ..model.registry import source_names
from ..utils.logging import logger
from .clustering import ClusterSettings, FittedClusters, FrameSample, fit_clusters
from .masking import wiener_filter

UNIT = "time-frequency bin"


class EmbeddingFamily:
    """Separation by clustering the bins of a network's per-bin embeddings.

    Options: ``mwf`` (Wiener filter after the soft masks), ``clusterer``, ``clusters`` (``K``;
    0: estimated), ``seed``, as for the cluster family.
    """

    name = "embedding"
    named_sources = False
    OPTIONS = ("mwf", "clusterer", "clusters", "seed")

    def __init__(
        self,
        params: dict[str, Any],
        engine: Callable[[], Engine],
        mwf: bool = False,
        clusterer: str | None = None,
        clusters: int | None = None,
        seed: int | None = None,
    ) -> None:
        self.settings = ClusterSettings.from_params(
            params, clusterer=clusterer, clusters=clusters, seed=seed
        )
        self.T = int(params["T"])
        self.F = int(params["F"])
        self.mwf = mwf
        self._engine = engine

    def declared_sources(self) -> list[str] | None:
        if self.settings.estimated:
            return None
        return source_names("source", int(self.settings.clusters))  # type: ignore[arg-type]

    def track(self) -> "EmbeddingTrack":
        return EmbeddingTrack(self)

    def embeddings(self, spectrum: np.ndarray) -> np.ndarray:
        """The network's embeddings ``(frames, F, D)`` of a segment's mixture STFT."""
        blocks = magnitude_blocks(spectrum, self.T, self.F)
        (embedding,) = self._engine()(blocks).values()
        return unblock(embedding, spectrum.shape[0])


def bin_energies(spectrum: np.ndarray, bins: int) -> np.ndarray:
    """The mixture energy ``(frames, bins)`` of each of the first ``bins`` bins (channels
    summed)."""
    return np.sum(np.abs(spectrum[:, :bins]) ** 2, axis=-1)


def sounding(energies: np.ndarray, T: int) -> np.ndarray:
    """Which bins ``(frames, bins)`` are within :data:`SILENCE_DB` of the loudest bin of their
    ``T``-frame block (the network's block, a training chunk's length): decided per block, so
    the same whatever the segment size, and a silent block keeps none."""
    frames = energies.shape[0]
    blocks = -(-frames // T)
    padded = np.zeros((blocks * T, energies.shape[1]), energies.dtype)
    padded[:frames] = energies
    loudest = padded.reshape(blocks, -1).max(axis=1)
    threshold = np.repeat(loudest, T)[:frames, None] * 10.0 ** (SILENCE_DB / 10.0)
    return (energies > threshold) & (threshold > 0)


def posteriors(fitted: FittedClusters, embeddings: np.ndarray, variance: float) -> np.ndarray:
    """Soft masks ``(n, k)``: each embedding's posterior under equal-weight Gaussians at the
    centres with per-dimension ``variance`` (rows sum to one)."""
    log_likelihood = -fitted.distances(embeddings) / (2.0 * variance)
    log_likelihood -= log_likelihood.max(axis=1, keepdims=True)
    weights = np.exp(log_likelihood)
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


class EmbeddingTrack:
    """One track: pass one samples its bins' embeddings, pass two masks every bin."""

    passes = 2

    def __init__(self, family: EmbeddingFamily) -> None:
        self.family = family
        self.sample = FrameSample(family.settings.max_frames, family.settings.seed, UNIT)
        self.quiet = FrameSample(family.settings.max_frames, family.settings.seed, UNIT)
        self.fitted: FittedClusters | None = None
        self.variance = 1.0

    def observe(self, spectrum: np.ndarray) -> None:
        embeddings = self.family.embeddings(spectrum)
        energies = bin_energies(spectrum, embeddings.shape[1])
        kept = sounding(energies, self.family.T)
        self.sample.add(embeddings[kept], energies[kept])
        if not self.sample.count:  # nothing sounds yet: keep silent bins, for a silent track
            self.quiet.add(embeddings.reshape(-1, embeddings.shape[-1]), energies.reshape(-1))

    def fit(self) -> FittedClusters:
        if self.fitted is None:
            if not self.sample.count:
                self.sample = self.quiet  # a silent track: its silent bins are all there is
            fitted = fit_clusters(self.sample, self.family.settings)
            frames = self.sample.frames
            assigned = fitted.distances(frames)[np.arange(len(frames)), fitted.sample_labels]
            self.variance = max(float(assigned.mean()) / frames.shape[1], 1e-6)
            self.fitted = fitted
            shares = ", ".join(f"{100 * s:.1f}%" for s in fitted.energy_shares)
            logger.info(
                f"{fitted.k} cluster(s) of {self.sample.count} time-frequency bins "
                f"({len(frames)} sampled); energy shares {shares}"
            )
        return self.fitted

    def sources(self) -> list[str]:
        return source_names("source", self.fit().k)

    def masks(self, spectrum: np.ndarray) -> np.ndarray:
        """Soft masks ``(frames, bins, k)`` of a segment, every bin of the STFT."""
        fitted = self.fit()
        embeddings = self.family.embeddings(spectrum)
        frames, bins, dimension = embeddings.shape
        masks = posteriors(fitted, embeddings.reshape(-1, dimension), self.variance)
        masks = masks.reshape(frames, bins, fitted.k)
        extension = np.repeat(masks[:, -1:], spectrum.shape[1] - bins, axis=1)
        return np.concatenate([masks, extension], axis=1)

    def separate(self, spectrum: np.ndarray) -> dict[str, np.ndarray]:
        masks = self.masks(spectrum)
        names = self.sources()
        if self.family.mwf:
            estimates = np.abs(spectrum)[..., None] * masks[:, :, None, :]
            filtered = wiener_filter(estimates, spectrum)
            return {name: filtered[..., k] for k, name in enumerate(names)}
        return {name: spectrum * masks[:, :, None, k] for k, name in enumerate(names)}
