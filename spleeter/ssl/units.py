"""Hidden units: k-means clusters of feature frames, the targets of masked prediction.

Iteration 1 clusters MFCCs (or log-mel frames) of the audio, later iterations the outputs of
an encoder layer of the previous iteration (HuBERT). Frames are standardised (per dimension,
statistics of the fitting sample) and clustered with scikit-learn's ``MiniBatchKMeans``: the
same frames and seed give the same units. The fitted model is stored as ``units.npz`` next to
the iteration's checkpoints, so a resumed run trains on the same targets.
"""

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import SpleeterError

UNITS_FILENAME = "units.npz"


@dataclass(frozen=True)
class UnitModel:
    """Cluster centres of standardised frames, and what was clustered."""

    centroids: np.ndarray
    """``(units, dims)`` in standardised coordinates."""
    mean: np.ndarray
    scale: np.ndarray
    target: str
    """``mfcc``, ``logmel`` or ``layer``."""
    layer: int = -1
    """The encoder layer clustered (``target`` ``layer``), else -1."""
    inertia: float = float("nan")
    """Mean squared distance of the fitting frames to their centre."""

    @property
    def units(self) -> int:
        return int(self.centroids.shape[0])

    def assign(self, frames: np.ndarray, batch: int = 65536) -> np.ndarray:
        """The unit of every frame ``(n, dims)`` -> ``(n,)`` int32 (nearest centre)."""
        frames = np.asarray(frames, dtype=np.float32)
        result = np.empty(frames.shape[0], dtype=np.int32)
        centres = self.centroids.astype(np.float32)
        norms = np.sum(centres * centres, axis=1)
        for start in range(0, frames.shape[0], batch):
            standard = (frames[start : start + batch] - self.mean) / self.scale
            distances = norms[None, :] - 2.0 * standard @ centres.T
            result[start : start + batch] = np.argmin(distances, axis=1)
        return result

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``units.npz`` into ``directory`` (atomically)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / UNITS_FILENAME
        temporary = directory / f".{UNITS_FILENAME}.{os.getpid()}.npz"
        np.savez(
            temporary,
            centroids=self.centroids,
            mean=self.mean,
            scale=self.scale,
            target=np.asarray(self.target),
            layer=np.asarray(self.layer),
            inertia=np.asarray(self.inertia),
        )
        os.replace(temporary, target)
        return target

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "UnitModel":
        path = Path(directory) / UNITS_FILENAME
        try:
            with np.load(path) as stored:
                return cls(
                    centroids=stored["centroids"],
                    mean=stored["mean"],
                    scale=stored["scale"],
                    target=str(stored["target"]),
                    layer=int(stored["layer"]),
                    inertia=float(stored["inertia"]),
                )
        except (OSError, KeyError, ValueError) as error:
            raise SpleeterError(f"Unit model {path} cannot be read: {error}") from error


def fit_units(
    frames: np.ndarray,
    units: int,
    target: str,
    *,
    layer: int = -1,
    seed: int = 0,
    batch_size: int = 4096,
    n_init: int = 3,
    max_iter: int = 100,
) -> UnitModel:
    """Cluster ``frames`` ``(n, dims)`` into ``units`` units (deterministic for a seed).

    Raises:
        SpleeterError: fewer frames than units, or scikit-learn is missing.
    """
    try:
        from sklearn.cluster import MiniBatchKMeans
    except ImportError as error:
        raise SpleeterError(
            "scikit-learn is needed to cluster units (pip install scikit-learn)"
        ) from error
    frames = np.asarray(frames, dtype=np.float32)
    if frames.shape[0] < units:
        raise SpleeterError(
            f"Only {frames.shape[0]} feature frames to cluster into {units} units: give more "
            "audio or fewer units"
        )
    mean = frames.mean(axis=0)
    scale = frames.std(axis=0)
    scale = np.where(scale > 1e-6, scale, 1.0).astype(np.float32)
    standard = (frames - mean) / scale
    kmeans = MiniBatchKMeans(
        n_clusters=units,
        random_state=seed,
        batch_size=min(batch_size, frames.shape[0]),
        n_init=n_init,
        max_iter=max_iter,
        compute_labels=False,
    )
    kmeans.fit(standard)
    model = UnitModel(
        centroids=kmeans.cluster_centers_.astype(np.float32),
        mean=mean.astype(np.float32),
        scale=scale,
        target=target,
        layer=layer,
    )
    assigned = model.assign(frames)
    inertia = float(np.mean(np.sum((standard - model.centroids[assigned]) ** 2, axis=1)))
    return UnitModel(model.centroids, model.mean, model.scale, target, layer, inertia)


def sample_frames(counts: list[int], limit: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Which frames to cluster: at most ``limit`` of all, uniformly without replacement.

    ``counts`` are the frame counts of the chunks; returns, per chunk, the sorted indices of its
    chosen frames (all of them when there are at most ``limit`` frames in total), so that the
    frames themselves can be computed one chunk at a time.
    """
    total = int(sum(counts))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    if total <= limit:
        return [np.arange(count) for count in counts]
    chosen = np.sort(rng.choice(total, size=limit, replace=False))
    bounds = np.searchsorted(chosen, offsets)
    return [chosen[bounds[k] : bounds[k + 1]] - offsets[k] for k in range(len(counts))]
