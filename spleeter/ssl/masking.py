"""HuBERT / wav2vec 2.0 span masking.

A fraction ``prob`` of the frames are chosen as span starts (``round(prob * frames)`` with
stochastic rounding, at least ``min_masks``, sampled without replacement among the positions
where a whole span fits); each start masks ``length`` frames. Spans may overlap, so the masked
fraction is below ``prob * length``: for a frame away from the edges it is about
``1 - (1 - prob) ** length`` (HuBERT's p = 8 %, l = 10 masks about 57 % of the frames).
"""

import numpy as np


def span_mask(
    rng: np.random.Generator, frames: int, prob: float, length: int, min_masks: int = 1
) -> np.ndarray:
    """A boolean mask ``(frames,)``: True at masked frames."""
    mask = np.zeros(frames, dtype=bool)
    positions = frames - length + 1
    if positions <= 0:
        if min_masks > 0 and frames > 0:
            mask[:] = True
        return mask
    count = int(prob * frames + rng.random())
    count = min(max(count, min_masks), positions)
    starts = rng.choice(positions, size=count, replace=False)
    for start in starts:
        mask[start : start + length] = True
    return mask


def expected_masked_fraction(prob: float, length: int) -> float:
    """Approximate masked fraction of the frames away from the edges (starts drawn
    independently with probability ``prob``)."""
    return 1.0 - (1.0 - prob) ** length
