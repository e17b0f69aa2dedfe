"""Figures of an evaluation, saved as PNG with matplotlib's Agg canvas.

The figures are drawn on :class:`matplotlib.figure.Figure` objects with an explicit Agg canvas,
never through ``pyplot``: nothing changes the backend or the global state of a program (or
notebook) that calls these functions.
"""

import math
from pathlib import Path

import numpy as np

from .report import TrackMedians

SPECTROGRAM_SECONDS: float = 30.0
"""Longest excerpt (from the start of the track) drawn in the spectrogram figure."""

DYNAMIC_RANGE_DB: float = 80.0
"""Range of the spectrogram colour scale below its loudest bin."""


def _save(figure, path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path


def metric_boxplot(
    per_track: dict[str, TrackMedians],
    instruments: list[str],
    path: Path,
    protocol: str,
    metric: str = "SDR",
) -> Path:
    """Box plot of ``metric`` (each track's median over frames) per instrument, with the
    track values drawn as points on top. Tracks whose value is NaN are left out."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(1.6 * len(instruments) + 2.5, 4.5), layout="constrained")
    axes = figure.add_subplot()
    columns = [
        [t[i][metric] for t in per_track.values() if not math.isnan(t[i][metric])]
        for i in instruments
    ]
    positions = list(range(1, len(instruments) + 1))
    drawn = [(p, c) for p, c in zip(positions, columns, strict=True) if c]
    if drawn:
        axes.boxplot([c for _, c in drawn], positions=[p for p, _ in drawn], widths=0.5)
    rng = np.random.default_rng(0)
    for position, column in zip(positions, columns, strict=True):
        jitter = rng.uniform(-0.12, 0.12, len(column))
        axes.scatter(position + jitter, column, s=12, alpha=0.6, zorder=3)
    axes.set_xticks(
        positions, [f"{i}\n({len(c)} tracks)" for i, c in zip(instruments, columns, strict=True)]
    )
    axes.set_xlim(0.4, len(instruments) + 0.6)
    axes.set_ylabel(f"{metric} (dB)")
    axes.grid(axis="y", alpha=0.3)
    axes.set_title(f"{metric} per track: median over frames [{protocol}]")
    return _save(figure, path)


def _spectrogram_db(waveform: np.ndarray, frame: int = 2048, hop: int = 512) -> np.ndarray:
    """Magnitude spectrogram in dB (frequency x time) of the channel mean of a waveform."""
    mono = np.asarray(waveform, dtype=np.float64)
    if mono.ndim == 2:
        mono = mono.mean(axis=1)
    if mono.shape[0] < frame:
        mono = np.pad(mono, (0, frame - mono.shape[0]))
    count = 1 + (mono.shape[0] - frame) // hop
    frames = np.lib.stride_tricks.sliding_window_view(mono, frame)[::hop][:count]
    spectrum = np.abs(np.fft.rfft(frames * np.hanning(frame), axis=1)).T
    return 20.0 * np.log10(spectrum + 1e-10)


def spectrogram_figure(
    mixture: np.ndarray,
    estimates: dict[str, np.ndarray],
    references: dict[str, np.ndarray],
    sample_rate: int,
    path: Path,
    title: str,
    seconds: float = SPECTROGRAM_SECONDS,
) -> Path:
    """The mixture on top, then one row per instrument: estimate (left), reference (right).

    All panels share one colour scale (``DYNAMIC_RANGE_DB`` below the loudest bin).
    """
    from matplotlib.figure import Figure

    limit = int(seconds * sample_rate)
    names = list(estimates)
    spectrograms = {"mixture": _spectrogram_db(mixture[:limit])}
    for name in names:
        spectrograms[f"{name} (estimate)"] = _spectrogram_db(estimates[name][:limit])
        spectrograms[f"{name} (reference)"] = _spectrogram_db(references[name][:limit])
    top = max(float(s.max()) for s in spectrograms.values())
    duration = min(limit, mixture.shape[0]) / sample_rate
    extent = (0.0, duration, 0.0, sample_rate / 2000.0)

    figure = Figure(figsize=(11, 2.2 * (len(names) + 1) + 0.6), layout="constrained")
    grid = figure.add_gridspec(len(names) + 1, 2)
    panels = [(figure.add_subplot(grid[0, :]), "mixture")]
    for row, name in enumerate(names, start=1):
        panels.append((figure.add_subplot(grid[row, 0]), f"{name} (estimate)"))
        panels.append((figure.add_subplot(grid[row, 1]), f"{name} (reference)"))
    image = None
    for axes, label in panels:
        image = axes.imshow(
            spectrograms[label],
            origin="lower",
            aspect="auto",
            extent=extent,
            vmin=top - DYNAMIC_RANGE_DB,
            vmax=top,
            cmap="magma",
            interpolation="nearest",
        )
        axes.set_title(label, fontsize=10)
        axes.set_ylabel("kHz")
    for axes, _ in panels[-2:]:
        axes.set_xlabel("time (s)")
    figure.colorbar(image, ax=[a for a, _ in panels], label="dB", shrink=0.6)
    figure.suptitle(title)
    return _save(figure, path)
