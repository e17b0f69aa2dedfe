"""The mask family: a network estimates each instrument's magnitude; masks make the sources.

Ratio masks ``(y_i^p + eps/n) / (sum_j y_j^p + eps)`` extended to every bin (frame-local, one
pass), or norbert's multichannel Wiener filter (``mwf``: its spatial covariances are sums over
the whole track, so pass one observes, pass two filters). See :mod:`.masking`.
"""

from collections.abc import Callable
from typing import Any

import numpy as np

from ..audio.spectrogram import magnitude_blocks, unblock
from ..engines import Engine
from ..model import architecture
from .masking import WienerStatistics, apply_mask, ratio_masks, zero_extend


class MaskFamily:
    """Ratio masks or the Wiener filter over a network's magnitude estimates."""

    name = "mask"
    named_sources = True

    def __init__(
        self, params: dict[str, Any], engine: Callable[[], Engine], mwf: bool = False
    ) -> None:
        self.T = int(params["T"])
        self.F = int(params["F"])
        self.instruments = list(params["instrument_list"])
        self.separation_exponent = params["separation_exponent"]
        self.mask_extension = params["mask_extension"]
        self.mwf = mwf
        self._engine = engine
        self._params = params
        self._tail_frames = architecture(params).tail_frames

    def declared_sources(self) -> list[str]:
        return list(self.instruments)

    def track(self) -> "MaskedTrack":
        return MaskedTrack(self)

    def estimates(self, spectrum: np.ndarray) -> dict[str, np.ndarray]:
        """The network's magnitude estimates ``{"<name>_spectrogram": (frames, F, C)}``.

        A zero-padded last block runs cut to the frames its network declares enough for the
        same outputs (the registry's ``tail_frames``): upstream computes the padding too.
        """
        frames = spectrum.shape[0]
        blocks = magnitude_blocks(spectrum, self.T, self.F)
        real = frames - (blocks.shape[0] - 1) * self.T
        cut = self._tail_frames(self._params, real) if self._tail_frames else self.T
        if cut >= self.T:
            estimates = self._engine()(blocks)
            return {name: unblock(value, frames) for name, value in estimates.items()}
        last = self._engine()(np.ascontiguousarray(blocks[-1:, :cut]))
        if blocks.shape[0] == 1:
            return {name: value[0, :real] for name, value in last.items()}
        whole = self._engine()(blocks[:-1])
        return {
            name: np.concatenate([unblock(value, frames - real), last[name][0, :real]])
            for name, value in whole.items()
        }

    def magnitudes(self, spectrum: np.ndarray) -> np.ndarray:
        """Estimates zero-extended to every bin, stacked: ``(frames, bins, C, J)``."""
        estimates = self.estimates(spectrum)
        return np.stack(
            [
                zero_extend(estimates[f"{name}_spectrogram"], spectrum.shape[1])
                for name in self.instruments
            ],
            axis=-1,
        )

    def masked(self, spectrum: np.ndarray) -> dict[str, np.ndarray]:
        """Ratio-masked STFTs ``{instrument: (frames, bins, C)}``."""
        masks = ratio_masks(self.estimates(spectrum), self.separation_exponent)
        by_channel = np.ascontiguousarray(np.moveaxis(spectrum, -1, 0))  # read once per stem
        mixture = np.moveaxis(by_channel, 0, -1)
        return {
            name: apply_mask(mixture, masks[f"{name}_spectrogram"], self.mask_extension)
            for name in self.instruments
        }


class MaskedTrack:
    """One track through the mask family; two passes with the Wiener filter."""

    def __init__(self, family: MaskFamily) -> None:
        self._family = family
        self.passes = 2 if family.mwf else 1
        self._statistics = WienerStatistics() if family.mwf else None

    def observe(self, spectrum: np.ndarray) -> None:
        if self._statistics is not None:
            self._statistics.accumulate(self._family.magnitudes(spectrum), spectrum)

    def sources(self) -> list[str]:
        return self._family.declared_sources()

    def separate(self, spectrum: np.ndarray) -> dict[str, np.ndarray]:
        if self._statistics is None:
            return self._family.masked(spectrum)
        separated = self._statistics.filter(self._family.magnitudes(spectrum), spectrum)
        return {name: separated[..., k] for k, name in enumerate(self._family.instruments)}
