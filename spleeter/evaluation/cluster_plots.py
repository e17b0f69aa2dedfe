"""Pictures of a cluster separation: labels over time on the spectrogram, a 2-D projection
of the latent frames coloured by cluster, the energy shares (matplotlib, Agg)."""

from pathlib import Path
from typing import Any

import numpy as np


def plot_cluster_separation(
    analysis: dict[str, Any], mixture: np.ndarray, sample_rate: int, path: str | Path
) -> Path:
    """One PNG with three panels from :func:`spleeter.separation.cluster.analyse`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .cluster_metrics import energy_shares

    labels, latent, hop = analysis["labels"], analysis["latent"], analysis["hop"]
    k = analysis["fitted"].k
    colours = plt.get_cmap("tab10")
    figure, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    spec_ax, proj_ax, energy_ax = axes
    mono = np.asarray(mixture, np.float64).mean(axis=1)
    spec_ax.specgram(mono + 1e-9, NFFT=1024, noverlap=512, Fs=sample_rate, cmap="magma")
    times = (np.arange(len(labels)) * hop - analysis["offset"]) / sample_rate
    top = sample_rate / 2
    spec_ax.scatter(
        times, np.full(len(labels), top * 0.97), c=colours(labels % 10), s=4, marker="s"
    )
    spec_ax.set(title="Mixture, cluster of each latent frame (top)", xlabel="s", ylabel="Hz")
    centred = latent - latent.mean(axis=0)
    if centred.shape[0] > 1 and centred.shape[1] > 1:
        _, _, components = np.linalg.svd(
            centred[:: max(1, len(centred) // 5000)], full_matrices=False
        )
        projected = centred @ components[:2].T
    else:
        projected = np.zeros((len(centred), 2))
    step = max(1, len(projected) // 5000)
    proj_ax.scatter(projected[::step, 0], projected[::step, 1], c=colours(labels[::step] % 10), s=3)
    proj_ax.set(title="Latent frames (PCA), coloured by cluster", xlabel="PC 1", ylabel="PC 2")
    shares = energy_shares(analysis["sources"], mixture)
    decoded = energy_shares(analysis["decoded"], mixture)
    positions = np.arange(k)
    energy_ax.bar(
        positions - 0.2, shares, 0.4, label="separated (masked)", color=colours(positions)
    )
    energy_ax.bar(positions + 0.2, decoded, 0.4, label="decoded cluster", color="grey")
    energy_ax.set_xticks(positions, [f"source_{c + 1}" for c in positions])
    energy_ax.set(title=f"Energy share (sum: {sum(decoded):.2f} decoded)", ylabel="E_i / E_mix")
    energy_ax.legend()
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path
