"""The cluster family: sources from clusters of an autoencoder's latent frames.

The seed's separation (``seanet.autoencoder``, trained by ``spleeter pretrain`` on unlabelled
audio): encode the track, cluster its latent frames (one every ``hop`` samples), keep one
cluster's frames and zero the others, decode. How it fits the pipeline's STFT seam:

1. **Pass one** (``observe``): a segment's mixture STFT is turned back into its waveform
   (:func:`~spleeter.audio.spectrogram.overlap_add` of the segment's own frames: exact but for
   the window's zeros at the very edges), encoded, and its latent frames (latent means) go
   into a bounded, seeded sample (:class:`~.clustering.FrameSample`, ``cluster.max_frames``)
   with each frame's mixture energy.
2. ``sources()`` fits the clusterer on the sample (:func:`~.clustering.fit_clusters`): ``K``
   given or estimated, clusters numbered by decreasing energy; names ``source_1 .. source_K``.
3. **Pass two** (``separate``): the segment is encoded again, every latent frame assigned to
   its nearest cluster centre, and each cluster's latent (others zeroed) decoded into a
   waveform ``d_k``. The STFT of ``d_k`` on the segment's grid gives ``|D_k|``; the sources are
   ratio masks ``|D_k|^p / sum_j |D_j|^p`` (``p`` = ``separation_exponent``) on the mixture's
   STFT, so they sum to the mixture exactly (the decoded clusters themselves do not: their sum
   is the autoencoder's reconstruction, whose error :mod:`spleeter.evaluation.cluster_metrics`
   reports as the seed did).

Limit, stated: a cluster is a set of whole latent frames (about 2.9 ms at hop 128), so this
splits a song in time; two instruments that sound together share frames and cannot be split.
(The network runs under TensorFlow; ``--engine`` does not apply to it.)
"""

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import SpleeterError
from ..audio.spectrogram import frames_stft, overlap_add
from ..model.registry import source_names
from ..utils.logging import logger
from .clustering import ClusterSettings, FittedClusters, FrameSample, fit_clusters

EPSILON = 1e-10


class ClusterFamily:
    """Separation by clustering the latent frames of ``params``' autoencoder.

    Options: ``clusterer`` (kmeans, agglomerative, dbscan), ``clusters`` (``K``; 0 or None with
    no configured ``K``: estimated), ``seed``. ``mwf`` does not apply (warned, ignored).
    """

    name = "cluster"
    named_sources = False
    OPTIONS = ("mwf", "clusterer", "clusters", "seed")

    def __init__(
        self,
        params: dict[str, Any],
        engine: Callable[[], Any] | None = None,
        mwf: bool = False,
        clusterer: str | None = None,
        clusters: int | None = None,
        seed: int | None = None,
        prefix: str = "source",
        autoencoder: Any = None,
    ) -> None:
        self.params = params
        self.settings = ClusterSettings.from_params(
            params, clusterer=clusterer, clusters=clusters, seed=seed
        )
        if mwf:
            logger.warning("--mwf does not apply to the cluster family: ratio masks are used")
        self.frame_length = int(params["frame_length"])
        self.frame_step = int(params["frame_step"])
        self.exponent = float(params.get("separation_exponent", 2))
        self.prefix = prefix
        self._autoencoder = autoencoder

    def declared_sources(self) -> list[str] | None:
        if self.settings.estimated:
            return None
        return source_names(self.prefix, int(self.settings.clusters))  # type: ignore[arg-type]

    def load(self) -> Any:
        """The autoencoder (its model directory resolved and loaded once)."""
        if self._autoencoder is None:
            from ..model.autoencoder import LoadedAutoencoder
            from ..model.provider import ModelProvider

            model_dir = ModelProvider.default().get(
                self.params["model_dir"], unpublished=self.params.get("model_unpublished")
            )
            self.params["model_dir"] = model_dir
            self._autoencoder = LoadedAutoencoder(self.params, model_dir)
            logger.info(f"Separating by {self.settings.clusterer} clusters of latent frames")
        return self._autoencoder

    def track(self) -> "ClusterTrack":
        return ClusterTrack(self)

    # -- the steps, shared with the analysis ------------------------------------------------

    def waveform(self, spectrum: np.ndarray) -> np.ndarray:
        """The (padded) samples a segment's STFT frames cover."""
        return overlap_add(spectrum, self.frame_length, self.frame_step)

    def latents(self, waveform: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Latent frames ``(L, D)`` of a waveform and the mixture energy of each."""
        model = self.load()
        latent = model.encode(waveform)
        padded = np.zeros((latent.shape[0] * model.hop, waveform.shape[1]), np.float32)
        padded[: waveform.shape[0]] = waveform
        energies = np.sum(padded.reshape(latent.shape[0], -1) ** 2, axis=1)
        return latent, energies

    def decoded(self, latent: np.ndarray, labels: np.ndarray, k: int, n: int) -> np.ndarray:
        """Each cluster's decoding ``(k, n, C)``: its latent frames kept, the others zeroed."""
        kept = np.stack([latent * (labels == c)[:, None] for c in range(k)]).astype(np.float32)
        return self.load().decode(kept)[:, :n]

    def masks(self, decoded: np.ndarray, n_frames: int) -> np.ndarray:
        """Ratio masks ``(k, frames, bins, C)`` from the decoded clusters' magnitudes."""
        magnitudes = (
            np.stack([np.abs(frames_stft(d, self.frame_length, self.frame_step)) for d in decoded])
            ** self.exponent
        )
        magnitudes = magnitudes[:, :n_frames]
        total = magnitudes.sum(axis=0, keepdims=True)
        k = decoded.shape[0]
        return np.where(total > EPSILON, magnitudes / np.maximum(total, EPSILON), 1.0 / k)


class ClusterTrack:
    """One track: pass one samples its latent frames, pass two decodes per cluster."""

    passes = 2

    def __init__(self, family: ClusterFamily) -> None:
        self.family = family
        self.sample = FrameSample(family.settings.max_frames, family.settings.seed)
        self.fitted: FittedClusters | None = None
        self.frame_counts: np.ndarray | None = None
        """Latent frames assigned to each cluster in pass two."""

    def observe(self, spectrum: np.ndarray) -> None:
        latent, energies = self.family.latents(self.family.waveform(spectrum))
        self.sample.add(latent, energies)

    def fit(self) -> FittedClusters:
        if self.fitted is None:
            self.fitted = fit_clusters(self.sample, self.family.settings)
            self.frame_counts = np.zeros(self.fitted.k, np.int64)
            shares = ", ".join(f"{100 * s:.1f}%" for s in self.fitted.energy_shares)
            logger.info(
                f"{self.fitted.k} cluster(s) of {self.sample.count} latent frames "
                f"({len(self.sample.frames)} sampled); energy shares {shares}"
            )
        return self.fitted

    def sources(self) -> list[str]:
        return source_names(self.family.prefix, self.fit().k)

    def labels(self, latent: np.ndarray) -> np.ndarray:
        return self.fit().assign(latent)

    def separate(self, spectrum: np.ndarray) -> dict[str, np.ndarray]:
        fitted = self.fit()
        family = self.family
        waveform = family.waveform(spectrum)
        latent, _ = family.latents(waveform)
        labels = fitted.assign(latent)
        self.frame_counts += np.bincount(labels, minlength=fitted.k)  # type: ignore[operator]
        decoded = family.decoded(latent, labels, fitted.k, waveform.shape[0])
        masks = family.masks(decoded, spectrum.shape[0])
        return {name: spectrum * masks[c] for c, name in enumerate(self.sources())}


def check_split(split: dict[str, int], stems: list[str]) -> None:
    """``--split STEM=K``: the stems exist and ``K`` >= 1 (0: estimated)."""
    for stem, k in split.items():
        if stem not in stems:
            raise SpleeterError(
                f"--split {stem}={k}: the model has no stem {stem} (it has {', '.join(stems)})"
            )
        if k < 0:
            raise SpleeterError(f"--split {stem}={k}: the number of parts must be >= 0")


class SplitFamily:
    """A model's stems, some of them split further by a cluster family (``--split other=3``):
    vocals, drums, bass, ``other_1 .. other_3``. Two passes: pass one runs the base family and
    observes the split stems' STFTs; pass two separates them into their clusters."""

    name = "split"
    named_sources = False  # other_1..K are matched to stems by content, like clusters

    def __init__(self, base: Any, splitters: dict[str, ClusterFamily]) -> None:
        if not base.named_sources:
            raise SpleeterError(
                f"--split splits the named stems of a mask model; this model's sources are "
                f"unnamed clusters ({base.name} family): ask for more --clusters instead"
            )
        self.base = base
        self.splitters = splitters
        check_split({s: f.settings.clusters or 0 for s, f in splitters.items()}, self._stems())

    def _stems(self) -> list[str]:
        stems = self.base.declared_sources()
        if stems is None:
            raise SpleeterError("--split needs a model whose stems are fixed")
        return list(stems)

    def declared_sources(self) -> list[str] | None:
        names = []
        for stem in self._stems():
            if stem not in self.splitters:
                names.append(stem)
                continue
            parts = self.splitters[stem].declared_sources()
            if parts is None:
                return None
            names += parts
        return names

    def load(self) -> Any:
        for splitter in self.splitters.values():
            splitter.load()
        return None

    def track(self) -> "SplitTrack":
        return SplitTrack(self)


class SplitTrack:
    passes = 2

    def __init__(self, family: SplitFamily) -> None:
        self.family = family
        self.base = family.base.track()
        self.parts = {stem: splitter.track() for stem, splitter in family.splitters.items()}

    def observe(self, spectrum: np.ndarray) -> None:
        if self.base.passes == 2:
            self.base.observe(spectrum)
        stems = self._base_stems(spectrum, observing=True)
        for stem, part in self.parts.items():
            part.observe(stems[stem])

    def _base_stems(self, spectrum: np.ndarray, observing: bool = False) -> dict[str, Any]:
        if self.base.passes == 2 and observing:
            # A two-pass base (Wiener filter) is only known after its own pass one: observe
            # the split stems through ratio masks meanwhile.
            return self.family.base.masked(spectrum)
        return self.base.separate(spectrum)

    def sources(self) -> list[str]:
        names = []
        for stem in self.base.sources():
            names += self.parts[stem].sources() if stem in self.parts else [stem]
        return names

    def separate(self, spectrum: np.ndarray) -> dict[str, np.ndarray]:
        separated = {}
        for stem, value in self._base_stems(spectrum).items():
            if stem in self.parts:
                separated.update(self.parts[stem].separate(value))
            else:
                separated[stem] = value
        return {name: separated[name] for name in self.sources()}


def split_family(
    base: Any, split: dict[str, int], split_model: str, options: dict[str, Any]
) -> SplitFamily:
    """``base``'s family with the stems of ``split`` split by ``split_model``'s clusters."""
    from ..model.checks import checked_configuration
    from ..model.registry import architecture

    params = checked_configuration(split_model, "separate")
    entry = architecture(params)
    if entry.family != "cluster":
        raise SpleeterError(
            f"--split needs an autoencoder cluster model (seanet.autoencoder); {split_model} "
            f"is {entry.type}"
        )
    splitters = {}
    for stem, k in split.items():
        splitters[stem] = ClusterFamily(
            dict(params), None, **{**options, "clusters": k}, prefix=stem
        )
    return SplitFamily(base, splitters)


def analyse(family: ClusterFamily, waveform: np.ndarray) -> dict[str, Any]:
    """A whole track (one segment) through the family, keeping what the metrics and plots
    need: ``sources`` (masked, the separation), ``decoded`` (each cluster's own decoding,
    the seed's separation), ``latent`` frames, their ``labels``, the ``fitted`` clusters."""
    from ..audio.spectrogram import istft, stft

    n = waveform.shape[0]
    spectrum = stft(np.asarray(waveform, np.float32), family.frame_length, family.frame_step)
    track = family.track()
    track.observe(spectrum)
    fitted = track.fit()
    padded = family.waveform(spectrum)
    latent, _ = family.latents(padded)
    labels = fitted.assign(latent)
    decoded = family.decoded(latent, labels, fitted.k, padded.shape[0])
    masks = family.masks(decoded, spectrum.shape[0])
    start = family.frame_length
    return {
        "sources": [
            istft(spectrum * mask, family.frame_length, family.frame_step, n) for mask in masks
        ],
        "decoded": [d[start : start + n] for d in decoded],
        "latent": latent,
        "labels": labels,
        "hop": family.load().hop,
        "offset": start,
        "fitted": fitted,
        "frame_counts": np.bincount(labels, minlength=fitted.k),
    }
