"""Test-time augmentation around any family's separation of a waveform.

``shifts`` (Demucs' ``--shifts``): separate the mixture several times, each delayed by a random
number of samples (up to half a second), undo the delay and average. The network then sees the
music at other positions relative to its frames and blocks of ``T`` frames, so its errors at
block edges and frame boundaries average out.

``overlap``: the pipeline cuts the spectrogram into non-overlapping blocks of ``T`` frames (as
upstream). With ``overlap`` > 0 it also separates with the block grid moved by ``B/K``, ``2B/K``
... (``B`` = ``T`` frames in samples, ``K = ceil(1 / (1 - overlap))`` grids), and crossfades
them with triangular weights that peak mid-block and vanish at a block's edges, so every sample
comes mostly from blocks it lies well inside.

Both are waveform-level: they wrap :class:`~.pipeline.SeparationPipeline` and need nothing of a
family. Each grid or shift costs one more separation (the network's time times the number of
runs); memory stays bounded (the runs advance together, segment by segment).
"""

import math
from collections.abc import Callable, Iterator

import numpy as np

from .. import SpleeterError
from .pipeline import Reader, Separation, SeparationPipeline

MAX_SHIFT_SECONDS = 0.5
"""Largest random delay of ``shifts``, as Demucs (``max_shift = 0.5 * samplerate``)."""

SHIFTS_SEED = 0
"""Seed of the random delays: the same run gives the same output."""

_MIN_WEIGHT = 1e-3
"""Floor of the crossfade weights, so that every sample has some weight in every grid."""


def grid_count(overlap: float) -> int:
    """How many block grids ``overlap`` asks for (1 for 0)."""
    if not 0 <= overlap < 1:
        raise SpleeterError(f"--overlap must be in [0, 1) (got {overlap:g})")
    return max(1, math.ceil(1 / (1 - overlap) - 1e-9))


class AveragedPipeline:
    """A pipeline that averages ``shifts`` randomly delayed runs over ``grid_count(overlap)``
    block grids (``shifts=1, overlap=0``: one plain run, exactly the wrapped pipeline's)."""

    def __init__(
        self, pipeline: SeparationPipeline, sample_rate: int, shifts: int = 1, overlap: float = 0
    ) -> None:
        if shifts < 1:
            raise SpleeterError(f"--shifts must be at least 1 (got {shifts})")
        self.pipeline = pipeline
        self.block = pipeline.T * pipeline.frame_step
        grids = grid_count(overlap)
        rng = np.random.default_rng(SHIFTS_SEED)
        max_shift = int(MAX_SHIFT_SECONDS * sample_rate)
        randoms = [0] if shifts == 1 else [int(d) for d in rng.integers(0, max_shift, shifts)]
        self.delays = [
            shift + grid * self.block // grids for shift in randoms for grid in range(grids)
        ]
        self.weighted = grids > 1

    @property
    def runs(self) -> int:
        """Separations per track (the cost factor)."""
        return len(self.delays)

    def run(self, read: Reader, reread: Callable[[], Reader] | None = None) -> Separation:
        if self.delays == [0]:
            return self.pipeline.run(read, reread)
        if reread is None:  # several runs read the input: hold it (as a two-pass family does)
            whole = _read_everything(read)
            read = _array_reader(whole)
            reread = lambda: _array_reader(whole)  # noqa: E731
        runs = []
        for k, delay in enumerate(self.delays):
            first = read if k == 0 else reread()
            runs.append(
                self.pipeline.run(
                    _delayed(first, delay), lambda delay=delay: _delayed(reread(), delay)
                )
            )
        sources = runs[0].sources
        if any(run.sources != sources for run in runs[1:]):
            raise SpleeterError("--shifts/--overlap: the shifted runs gave different sources")
        return Separation(sources, self._average(runs, sources))

    def _weights(self, delay: int, start: int, n: int) -> np.ndarray:
        """Crossfade weights of samples ``[start, start + n)`` in the run delayed by ``delay``:
        a triangle over each of its blocks (1 mid-block, 0 at the edges)."""
        if not self.weighted:
            return np.ones(n, np.float32)
        N, H = self.pipeline.frame_length, self.pipeline.frame_step
        # padded position of the sample, relative to the centre of the first block's span
        position = np.arange(start, start + n) + delay + N - (N - H) / 2
        phase = np.mod(position, self.block) / self.block
        return np.maximum(1 - np.abs(2 * phase - 1), _MIN_WEIGHT).astype(np.float32)

    def _average(self, runs: list[Separation], sources: list[str]) -> Iterator[dict]:
        """Undo each run's delay and average the runs, sample by sample, as they advance."""
        pending: list[dict[str, list[np.ndarray]]] = [{name: [] for name in sources} for _ in runs]
        held = [0] * len(runs)  # samples buffered per run (after its delay is dropped)
        to_drop = list(self.delays)
        done = [False] * len(runs)
        emitted = 0
        while True:
            active = [k for k in range(len(runs)) if not done[k]]
            if active:  # advance the run that is furthest behind
                k = min(active, key=lambda k: held[k])
                piece = next(runs[k].pieces, None)
                if piece is None:
                    done[k] = True
                else:
                    length = next(iter(piece.values())).shape[0]
                    drop = min(to_drop[k], length)
                    to_drop[k] -= drop
                    for name in sources:
                        pending[k][name].append(piece[name][drop:])
                    held[k] += length - drop
            ready = min(held)
            if ready == 0:
                if all(done):
                    return
                continue
            total = np.zeros((ready, 1), np.float32)
            sums = {name: np.zeros((ready, 2), np.float32) for name in sources}
            for k in range(len(runs)):
                weight = self._weights(self.delays[k], emitted, ready)[:, None]
                total += weight
                for name in sources:
                    buffered = np.concatenate(pending[k][name])
                    sums[name] += weight * buffered[:ready]
                    pending[k][name] = [buffered[ready:]]
                held[k] -= ready
            emitted += ready
            yield {name: sums[name] / total for name in sources}


def _delayed(read: Reader, delay: int) -> Reader:
    """``read`` with ``delay`` zero samples in front."""
    zeros = [delay]

    def delayed(n: int) -> np.ndarray:
        if zeros[0] == 0:
            return read(n)
        pad = min(zeros[0], n)
        zeros[0] -= pad
        head = np.zeros((pad, 2), np.float32)
        return head if pad == n else np.concatenate([head, read(n - pad)])

    return delayed


def _read_everything(read: Reader) -> np.ndarray:
    chunks = []
    while True:
        chunk = read(1 << 20)
        chunks.append(chunk)
        if chunk.shape[0] < 1 << 20:
            return np.concatenate(chunks)


def _array_reader(waveform: np.ndarray) -> Reader:
    position = [0]

    def read(n: int) -> np.ndarray:
        chunk = waveform[position[0] : position[0] + n]
        position[0] += chunk.shape[0]
        return chunk

    return read
