"""Model architectures: builder functions resolved by name from a config's ``model.type``.

``model.type`` is ``"<module>.<function>"`` relative to this package (``unet.unet``,
``unet.softmax_unet``, ``unet.ssl_unet``, ``blstm.blstm``). Every builder has the signature
``builder(input_tensor, instruments, params) -> {"<instrument>_spectrogram": tensor}``: it takes
the mixture's magnitude spectrogram ``(batch, T, F, n_channels)`` (a Keras symbolic tensor) and
returns one magnitude estimate of the same shape per instrument. Weighted layers are named the
way upstream's TF1 Keras auto-naming named them, so upstream checkpoints load by name.
"""

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any


class LayerNames:
    """Hands out TF1-Keras-style layer names: ``conv2d``, ``conv2d_1``, ``conv2d_2``...

    One instance per model: upstream numbered layers per class across the whole graph, in
    creation order, so instrument ``k`` of a U-Net owns ``conv2d_{7k}`` to ``conv2d_{7k+6}``.
    """

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()

    def __call__(self, base: str) -> str:
        index = self._counts[base]
        self._counts[base] += 1
        return base if index == 0 else f"{base}_{index}"


def apply(
    function: Callable[..., Any],
    input_tensor: Any,
    instruments: Iterable[str],
    params: dict | None = None,
) -> dict[str, Any]:
    """Apply a single-instrument builder once per instrument, in ``instruments`` order."""
    names = LayerNames()
    return {
        f"{instrument}_spectrogram": function(
            input_tensor,
            output_name=f"{instrument}_spectrogram",
            params=params or {},
            names=names,
        )
        for instrument in instruments
    }
