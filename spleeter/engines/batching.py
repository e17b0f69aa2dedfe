"""Running a network on a long stack of blocks a few at a time (bounded activation memory)."""

from collections.abc import Callable

import numpy as np

DEFAULT_BATCH_BLOCKS = 4
"""Blocks of ``T`` frames per network call: bounds activation memory on long inputs."""


def in_batches(
    blocks: np.ndarray,
    batch_blocks: int,
    run: Callable[[np.ndarray], dict[str, np.ndarray]],
) -> dict[str, np.ndarray]:
    """``run`` on ``batch_blocks`` contiguous blocks at a time, its outputs concatenated."""
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, blocks.shape[0], batch_blocks):
        batch = np.ascontiguousarray(blocks[start : start + batch_blocks])
        for name, value in run(batch).items():
            parts.setdefault(name, []).append(value)
    return {name: np.concatenate(values) for name, values in parts.items()}
