"""Clustering latent frames: a bounded sample, a fitted clusterer, every frame assigned.

Memory stays bounded whatever the track's length: :class:`FrameSample` keeps at most
``max_frames`` frames (reservoir sampling with seeded keys, so the sample of a track is the
same on every run), the clusterer is fitted on the sample, and every frame of the track is then
assigned to its nearest cluster centre (in the sample's standardised space). No TensorFlow.

Clusterers (scikit-learn): ``kmeans`` (``KMeans``), ``agglomerative`` (Ward
``AgglomerativeClustering``) and ``dbscan`` (``DBSCAN``; its own number of clusters, merged
down to ``max_clusters`` by Ward linkage of the cluster centres as the seed merged to <= 4;
noise frames take their nearest cluster). ``K`` is either given or estimated on the sample over
``min_clusters .. max_clusters`` (``k_estimate``): by the silhouette score of each candidate
clustering, or by the eigengap of the normalised Laplacian of the sample's self-tuning affinity
(``K`` clear groups give ``K`` eigenvalues near zero, then a jump), which needs no
clustering per candidate. Clusters are numbered by decreasing
energy (the mixture energy of their sampled frames), ties by their order: a stable rule.
"""

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import SpleeterError
from ..utils.logging import logger

CLUSTERERS = ("kmeans", "agglomerative", "dbscan")
K_ESTIMATES = ("silhouette", "eigengap")
EIGENGAP_FRAMES = 1000
"""Frames of the sample the eigengap's Laplacian is built on (its dense eigensolver grows as
the cube of this: 0.3 s at 1000 frames on 2 cores)."""


@dataclass(frozen=True)
class ClusterSettings:
    """How a track's frames are clustered (a configuration's ``cluster`` block, overridden by
    ``--clusterer`` / ``--clusters``)."""

    clusterer: str = "kmeans"
    clusters: int | None = None
    """``K``; None: estimated per track (by ``k_estimate``; DBSCAN finds its own)."""
    min_clusters: int = 2
    max_clusters: int = 5
    k_estimate: str = "silhouette"
    """How ``K`` is estimated when not given: ``silhouette`` or ``eigengap``."""
    eigengap_neighbours: int = 7
    """The neighbour whose distance sets a frame's scale in the eigengap's affinity (7 as
    the self-tuning spectral clustering paper)."""
    max_frames: int = 3000
    """Frames the clusterer is fitted on (the seed's 3000)."""
    seed: int = 0
    n_init: int = 4
    dbscan_eps: float | None = None
    """None: the median distance of each sampled frame to its ``dbscan_min_samples``-th
    neighbour."""
    dbscan_min_samples: int = 10
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_params(cls, params: dict[str, Any], **overrides: Any) -> "ClusterSettings":
        block = dict(params.get("cluster") or {})
        known = {name for name in cls.__dataclass_fields__ if name != "extra"}
        values = {key: block.pop(key) for key in list(block) if key in known}
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "clusters" in overrides and overrides["clusters"] == 0:
            values["clusters"] = None  # --clusters 0: estimate
        settings = cls(**values, extra=block)
        settings.check()
        return settings

    def check(self) -> None:
        if self.clusterer not in CLUSTERERS:
            raise SpleeterError(
                f"Unknown clusterer {self.clusterer!r} (choose from {', '.join(CLUSTERERS)})"
            )
        if self.k_estimate not in K_ESTIMATES:
            raise SpleeterError(
                f"Unknown cluster.k_estimate {self.k_estimate!r} (choose from "
                f"{', '.join(K_ESTIMATES)})"
            )
        if not _is_int(self.eigengap_neighbours) or self.eigengap_neighbours < 1:
            raise SpleeterError(
                f"cluster.eigengap_neighbours must be >= 1 (got {self.eigengap_neighbours!r})"
            )
        if self.clusters is not None and (not _is_int(self.clusters) or self.clusters < 1):
            raise SpleeterError(f"The number of clusters must be >= 1 (got {self.clusters!r})")
        if not 1 <= self.min_clusters <= self.max_clusters:
            raise SpleeterError(
                f"cluster.min_clusters ({self.min_clusters}) must be between 1 and "
                f"max_clusters ({self.max_clusters})"
            )
        if self.max_frames < 2:
            raise SpleeterError(f"cluster.max_frames must be >= 2 (got {self.max_frames})")
        if self.clusters is not None and self.clusters > self.max_frames:
            # Clusters are fitted on at most max_frames frames: refuse before any work (and
            # before K output files are planned).
            raise SpleeterError(
                f"--clusters {self.clusters} is more than the {self.max_frames} sampled points "
                "(latent frames or bins) a track's clusters are fitted on (cluster.max_frames)"
            )

    @property
    def estimated(self) -> bool:
        """Whether ``K`` is decided per track."""
        return self.clusters is None or self.clusterer == "dbscan"


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


class FrameSample:
    """At most ``size`` frames of a stream, uniformly sampled (seeded reservoir), with their
    mixture energies; ``count`` frames seen in all."""

    def __init__(self, size: int, seed: int, unit: str = "latent frame") -> None:
        self.size = size
        self.unit = unit
        """What a sampled row is, for messages (``latent frame``, ``time-frequency bin``)."""
        self.rng = np.random.default_rng([seed, 17])
        self.count = 0
        self.keys = np.zeros(0)
        self.frames: np.ndarray | None = None
        self.energies = np.zeros(0)

    def add(self, frames: np.ndarray, energies: np.ndarray) -> None:
        frames = np.asarray(frames, np.float32)
        if not len(frames):
            return
        keys = self.rng.random(len(frames))
        self.count += len(frames)
        if self.frames is None:
            self.frames = np.zeros((0, frames.shape[1]), np.float32)
        keys = np.concatenate([self.keys, keys])
        held = np.concatenate([self.frames, frames])
        energies = np.concatenate([self.energies, np.asarray(energies, np.float64)])
        if len(keys) > self.size:
            keep = np.sort(np.argpartition(keys, self.size - 1)[: self.size])
            keys, held, energies = keys[keep], held[keep], energies[keep]
        self.keys, self.frames, self.energies = keys, held, energies


@dataclass
class FittedClusters:
    """Cluster centres in the standardised space, numbered by decreasing energy."""

    mean: np.ndarray
    scale: np.ndarray
    centres: np.ndarray
    method: str
    sample_labels: np.ndarray
    """The sampled frames' clusters (after renumbering)."""
    energy_shares: np.ndarray
    """Each cluster's share of the sampled frames' mixture energy."""
    silhouette: float | None = None

    @property
    def k(self) -> int:
        return len(self.centres)

    def distances(self, frames: np.ndarray) -> np.ndarray:
        """Squared distances ``(n, k)`` of frames ``(n, D)`` to every centre, in the sample's
        standardised space."""
        standard = (np.asarray(frames, np.float64) - self.mean) / self.scale
        squared = (
            np.sum(standard**2, axis=1)[:, None]
            - 2 * standard @ self.centres.T
            + np.sum(self.centres**2, axis=1)[None, :]
        )
        return np.maximum(squared, 0.0)

    def assign(self, frames: np.ndarray) -> np.ndarray:
        """Each frame's cluster: the nearest centre (frames ``(n, D)``)."""
        if not len(frames):
            return np.zeros(0, np.int64)
        return np.argmin(self.distances(frames), axis=1)


def fit_clusters(sample: FrameSample, settings: ClusterSettings) -> FittedClusters:
    """Fit the clusterer on a track's sampled frames.

    Raises:
        SpleeterError: no frame, ``K`` larger than the frames, DBSCAN finding only noise.
    """
    if sample.frames is None or not len(sample.frames):
        raise SpleeterError(f"The track gives no {sample.unit} to cluster")
    frames = sample.frames.astype(np.float64)
    n = len(frames)
    if settings.clusters is not None and settings.clusterer != "dbscan" and settings.clusters > n:
        raise SpleeterError(
            f"--clusters {settings.clusters} is more than the track's {sample.count} "
            f"{sample.unit}s: ask for at most {n} clusters (or a longer input)"
        )
    mean = frames.mean(axis=0)
    scale = frames.std(axis=0)
    scale = np.where(scale > 1e-6 * max(float(scale.max()), 1e-12), scale, 1.0)
    standard = (frames - mean) / scale
    distinct = len(np.unique(np.round(standard, 6), axis=0))
    silhouette = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning on silence (identical frames)
        if settings.clusterer == "dbscan":
            labels = _dbscan(standard, settings)
        else:
            k = settings.clusters
            if k is None:
                k, silhouette = _estimate_k(standard, settings, distinct)
            if k > distinct:
                logger.warning(
                    f"The track has {distinct} distinct {sample.unit}(s) for {k} clusters "
                    "(silence?): some sources will be empty"
                )
            labels = _labels(standard, k, settings.clusterer, settings)
    k = int(labels.max()) + 1
    centres = np.stack(
        [
            standard[labels == c].mean(axis=0) if np.any(labels == c) else standard[0]
            for c in range(k)
        ]
    )
    energy = np.array([sample.energies[labels == c].sum() for c in range(k)])
    order = np.argsort(-energy, kind="stable")
    renumber = np.empty(k, np.int64)
    renumber[order] = np.arange(k)
    total = energy.sum()
    shares = energy[order] / total if total > 0 else np.full(k, 1.0 / k)
    return FittedClusters(
        mean, scale, centres[order], settings.clusterer, renumber[labels], shares, silhouette
    )


def _labels(standard: np.ndarray, k: int, method: str, settings: ClusterSettings) -> np.ndarray:
    from sklearn.cluster import AgglomerativeClustering, KMeans

    if k <= 1:
        return np.zeros(len(standard), np.int64)
    if method == "kmeans":
        model = KMeans(k, n_init=settings.n_init, random_state=settings.seed)
        return model.fit_predict(standard).astype(np.int64)
    return AgglomerativeClustering(k, linkage="ward").fit_predict(standard).astype(np.int64)


def _estimate_k(
    standard: np.ndarray, settings: ClusterSettings, distinct: int
) -> tuple[int, float | None]:
    """The estimated ``K`` of the sample, and its silhouette score when that chose it."""
    from sklearn.metrics import silhouette_score

    top = min(settings.max_clusters, distinct - 1, len(standard) - 1)
    candidates = range(max(2, settings.min_clusters), top + 1)
    if not len(candidates):
        k = max(1, min(settings.min_clusters, distinct))
        logger.warning(f"Too few distinct latent frames ({distinct}) to estimate K: using {k}")
        return k, None
    if settings.k_estimate == "eigengap":
        k = eigengap_k(standard, candidates, settings.eigengap_neighbours, settings.seed)
        return k, None
    scores = {}
    for k in candidates:
        labels = _labels(standard, k, settings.clusterer, settings)
        if len(np.unique(labels)) < 2:
            continue
        scores[k] = float(silhouette_score(standard, labels, random_state=settings.seed))
    if not scores:
        return candidates[0], None
    best = max(scores, key=lambda k: (scores[k], -k))
    logger.info(
        "Silhouette by K: "
        + ", ".join(f"{k}: {s:.3f}" for k, s in scores.items())
        + f" -> K = {best}"
    )
    return best, scores[best]


def laplacian_spectrum(standard: np.ndarray, count: int, neighbours: int) -> np.ndarray:
    """The ``count`` smallest eigenvalues (ascending) of the symmetric normalised Laplacian of
    the frames' self-tuning affinity (Zelnik-Manor and Perona, 2004): ``exp(-d_ij^2 / (s_i
    s_j))`` with ``s_i`` the distance from frame ``i`` to its ``neighbours``-th neighbour, so
    that dense and sparse groups are judged on their own scale."""
    from scipy.linalg import eigh
    from scipy.sparse import csgraph
    from scipy.spatial.distance import cdist

    n = len(standard)
    squared = cdist(standard, standard, "sqeuclidean")
    scale = np.sqrt(np.sort(squared, axis=1)[:, min(neighbours, n - 1)])
    scale = np.maximum(scale, 1e-12)
    affinity = np.exp(-squared / (scale[:, None] * scale[None, :]))
    np.fill_diagonal(affinity, 0.0)
    laplacian = csgraph.laplacian(affinity, normed=True)
    last = min(count, n) - 1
    return eigh(laplacian, eigvals_only=True, subset_by_index=[0, last], driver="evr")


def eigengap_k(standard: np.ndarray, candidates: range, neighbours: int, seed: int = 0) -> int:
    """The candidate ``K`` after which the Laplacian's eigenvalues jump the most (on at most
    ``EIGENGAP_FRAMES`` of the frames, drawn with ``seed``)."""
    if len(standard) > EIGENGAP_FRAMES:
        rng = np.random.default_rng([seed, 29])
        standard = standard[np.sort(rng.choice(len(standard), EIGENGAP_FRAMES, replace=False))]
    values = laplacian_spectrum(standard, candidates.stop, neighbours)
    gaps = {k: float(values[k] - values[k - 1]) for k in candidates if k < len(values)}
    best = max(gaps, key=lambda k: (gaps[k], -k))
    logger.info(
        "Laplacian eigenvalues "
        + ", ".join(f"{value:.3f}" for value in values)
        + f" -> largest gap after {best}: K = {best}"
    )
    return best


def _dbscan(standard: np.ndarray, settings: ClusterSettings) -> np.ndarray:
    from sklearn.cluster import DBSCAN, AgglomerativeClustering
    from sklearn.neighbors import NearestNeighbors

    neighbours = min(settings.dbscan_min_samples, len(standard) - 1)
    eps = settings.dbscan_eps
    if eps is None:
        if neighbours < 1:
            eps = 1.0
        else:
            distances, _ = NearestNeighbors(n_neighbors=neighbours + 1).fit(standard).kneighbors()
            eps = float(np.median(distances[:, -1]))
        eps = max(eps, 1e-6)
    labels = DBSCAN(eps=eps, min_samples=max(1, neighbours)).fit_predict(standard)
    found = int(labels.max()) + 1
    if found == 0:
        raise SpleeterError(
            f"DBSCAN found no cluster: every latent frame is noise at eps {eps:.4g} "
            f"(min_samples {settings.dbscan_min_samples}); raise cluster.dbscan_eps or use "
            "--clusterer kmeans"
        )
    if found == 1:
        logger.warning("DBSCAN found a single cluster: the track is one source")
    centres = np.stack([standard[labels == c].mean(axis=0) for c in range(found)])
    if found > settings.max_clusters:
        merged = AgglomerativeClustering(settings.max_clusters, linkage="ward").fit_predict(centres)
        labels = np.where(labels >= 0, merged[np.maximum(labels, 0)], -1)
        found = settings.max_clusters
        centres = np.stack([standard[labels == c].mean(axis=0) for c in range(found)])
        logger.info(f"DBSCAN clusters merged down to {found}")
    noise = labels < 0
    if np.any(noise):
        distances = np.sum((standard[noise, None, :] - centres[None]) ** 2, axis=-1)
        labels[noise] = np.argmin(distances, axis=1)
    logger.info(f"DBSCAN: {found} cluster(s), {int(noise.sum())} noise frame(s) reassigned")
    return labels.astype(np.int64)
