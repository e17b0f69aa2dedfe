"""The Zipformer-style band-split transformer's architecture (``model.params``), as data.

TensorFlow-free, so the registry can check a configuration before anything is built. A
configuration names a ``preset`` (``small``: trains in minutes on 2 CPU cores; ``large``: for a
GPU) and may override any of its keys. The band split is data: ``band_edges`` (bin indices,
``0`` first and ``F`` last), or, when absent, ``band_widths`` (``[[count, width], ...]``, the
last width repeated up to ``F``, the last band cut at ``F``).
"""

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from ..utils.values import is_int

# Band widths in bins of a 4096-point STFT: the band-split RoFormer's layout (its widths in Hz
# for a 2048-point STFT doubled), then 128-bin bands up to the top of the band.
ROFORMER_WIDTHS = [[24, 4], [12, 8], [8, 24], [8, 48], [2, 96], [1, 128]]
# Coarser bands for the CPU preset (fewer bands: cheaper attention across bands).
SMALL_WIDTHS = [[8, 8], [8, 16], [8, 32], [1, 64]]

PRESETS: dict[str, dict[str, Any]] = {
    "small": {
        "dim": 48,
        "heads": 4,
        "downsampling": [2, 4, 8, 4, 2],
        "layers": [1, 1, 1, 1, 1],
        "ff_ratio": 2,
        "conv_kernel": 7,
        "head_ratio": 2,
        "token_heads": 4,
        "band_widths": SMALL_WIDTHS,
    },
    "large": {
        "dim": 256,
        "heads": 8,
        "downsampling": [1, 2, 4, 8, 4, 2],
        "layers": [2, 2, 3, 4, 3, 2],
        "ff_ratio": 4,
        "conv_kernel": 31,
        "head_ratio": 2,
        "token_heads": 8,
        "band_widths": ROFORMER_WIDTHS,
    },
}
"""Named parameter sets (``model.params.preset``); keys given beside ``preset`` override."""


def _positive_ints(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(is_int(v) and int(v) > 0 for v in value)


@dataclass(frozen=True)
class TransformerConfig:
    """Architecture of ``transformer.zipformer`` (see :mod:`..functions.transformer`)."""

    preset: str = "small"
    dim: int = 48
    """Model width (every stack, every band)."""
    heads: int = 4
    """Attention heads over time and over bands (``dim`` must be divisible by it)."""
    downsampling: tuple[int, ...] = (2, 4, 8, 4, 2)
    """Frame-rate factor of each stack (``T`` must be a multiple of their least common one)."""
    layers: tuple[int, ...] = (1, 1, 1, 1, 1)
    """Layers of each stack."""
    ff_ratio: int = 2
    conv_kernel: int = 7
    """Depth-wise convolution over time in each layer (odd; 0: none)."""
    head_ratio: int = 2
    """Hidden width of each band's mask MLP, in units of ``dim``."""
    token_heads: int = 4
    """Heads of the class tokens' attention over band x time features."""
    band_widths: tuple[tuple[int, int], ...] = ()
    band_edges: tuple[int, ...] | None = None
    bypass_min: float = 0.1
    """Lower clamp of the per-channel bypass weights (Zipformer's, 1: no bypass)."""
    presence_loss_weight: float = 0.0
    """Weight of the presence loss (0: none): a training-only head reads each stem's class
    token and predicts whether the stem is audible in the chunk (see
    :func:`spleeter.training.objectives.presence_loss`)."""

    @classmethod
    def from_params(cls, params: dict[str, Any] | None) -> "TransformerConfig":
        """The architecture of ``model.params`` (unchecked: see :func:`transformer_problems`)."""
        params = dict(params or {})
        preset = str(params.get("preset", "small"))
        values = {**PRESETS.get(preset, PRESETS["small"]), **params, "preset": preset}
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in values.items() if key in known}
        for key in ("downsampling", "layers", "band_edges"):
            if isinstance(values.get(key), list):
                values[key] = tuple(values[key])
        if isinstance(values.get("band_widths"), list):
            values["band_widths"] = tuple(tuple(pair) for pair in values["band_widths"])
        return cls(**values)

    def edges(self, bins: int) -> list[int]:
        """Band edges over ``bins`` bins: ``band_edges``, or ``band_widths`` laid out."""
        if self.band_edges is not None:
            return [int(edge) for edge in self.band_edges]
        edges = [0]
        widths = [int(w) for count, w in self.band_widths for _ in range(int(count))]
        last = widths[-1] if widths else bins
        while edges[-1] < bins:
            width = widths.pop(0) if widths else last
            edges.append(min(edges[-1] + width, bins))
        return edges

    def frame_multiple(self) -> int:
        """``T`` must be a multiple of this: the stacks' frame-rate factors' least multiple."""
        if not _positive_ints(list(self.downsampling)):
            return 1
        return math.lcm(*(int(d) for d in self.downsampling))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def transformer_problems(params: dict[str, Any]) -> list[str]:
    """What is wrong with a configuration's ``model.params`` for ``transformer.zipformer``,
    one phrase each (the ``T`` multiple is checked by the registry)."""
    raw = dict((params.get("model") or {}).get("params") or {})
    preset = raw.get("preset", "small")
    if preset not in PRESETS:
        return [f"model.params.preset {preset!r} is not one of {', '.join(sorted(PRESETS))}"]
    known = {f.name for f in fields(TransformerConfig)}
    unknown = sorted(set(raw) - known)
    if unknown:
        return [
            f"unknown model.params key(s) {', '.join(unknown)} for transformer.zipformer "
            f"(known: {', '.join(sorted(known))})"
        ]
    try:
        config = TransformerConfig.from_params(raw)
    except (TypeError, ValueError) as error:
        return [f"model.params for transformer.zipformer are unusable ({error})"]
    problems = []
    for key in ("dim", "heads", "ff_ratio", "head_ratio", "token_heads"):
        value = getattr(config, key)
        if not is_int(value) or int(value) <= 0:
            problems.append(f"model.params.{key} must be a positive integer (got {value!r})")
    if problems:
        return problems
    for key in ("heads", "token_heads"):
        if config.dim % getattr(config, key):
            problems.append(
                f"model.params.dim ({config.dim}) must be divisible by model.params.{key} "
                f"({getattr(config, key)})"
            )
    if not problems and (config.dim // config.heads) % 2:
        problems.append(
            f"model.params.dim / heads ({config.dim // config.heads}) must be even "
            "(rotary position encoding rotates pairs of channels)"
        )
    if not _positive_ints(list(config.downsampling)):
        problems.append(
            "model.params.downsampling must be a list of positive integers "
            f"(got {list(config.downsampling)!r})"
        )
    elif not _positive_ints(list(config.layers)) or len(config.layers) != len(config.downsampling):
        problems.append(
            f"model.params.layers ({list(config.layers)!r}) must give a positive number of "
            f"layers to each of the {len(config.downsampling)} stacks of downsampling"
        )
    weight = config.presence_loss_weight
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 <= weight < 1e6:
        problems.append(
            f"model.params.presence_loss_weight must be a number from 0 (got {weight!r})"
        )
    kernel = config.conv_kernel
    if kernel != 0 and (not is_int(kernel) or kernel < 0 or kernel % 2 == 0):
        problems.append(f"model.params.conv_kernel must be odd or 0 (got {kernel!r})")
    problems.extend(_band_problems(config, params.get("F")))
    return problems


def _band_problems(config: TransformerConfig, bins: Any) -> list[str]:
    if config.band_edges is None:
        widths = config.band_widths
        if not widths or not all(
            isinstance(pair, tuple | list) and len(pair) == 2 and _positive_ints(list(pair))
            for pair in widths
        ):
            return [
                "model.params.band_widths must be a list of [count, width] pairs of positive "
                f"integers (got {widths!r})"
            ]
        return []
    edges = list(config.band_edges)
    if not all(is_int(edge) for edge in edges) or len(edges) < 2:
        return [f"model.params.band_edges must be a list of bin indices (got {edges!r})"]
    if edges[0] != 0 or any(b <= a for a, b in zip(edges, edges[1:], strict=False)):
        return ["model.params.band_edges must start at 0 and increase strictly"]
    if is_int(bins) and edges[-1] != int(bins):
        where = "outside" if edges[-1] > int(bins) else "short of"
        return [
            f"model.params.band_edges end at bin {edges[-1]}, {where} the F = {bins} bins "
            "(the last edge must be F)"
        ]
    return []


def frame_multiple(params: dict[str, Any]) -> int:
    """The registry's ``frame_multiple`` for ``transformer.zipformer``."""
    raw = dict((params.get("model") or {}).get("params") or {})
    try:
        return TransformerConfig.from_params(raw).frame_multiple()
    except (TypeError, ValueError):
        return 1
