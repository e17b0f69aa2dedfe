"""The network registry: every architecture, registered once, with what it needs declared.

An entry says which separation family turns the network's outputs into sources (``mask``: one
magnitude estimate per instrument, made into ratio masks or a Wiener filter), which training
task trains it (``separation``: supervised on stems; ``masked_prediction``: self-supervised;
``reconstruction``: an autoencoder on unlabelled audio, separated by the ``cluster`` family),
what that training minimises (``objective``: each stem's magnitude, or ``deep_clustering`` of
per-bin embeddings, separated by the ``embedding`` family),
the multiple ``T`` and ``F`` must be (a function of the architecture's own parameters), the
sources it outputs, and its parameter checks. Configuration checks, the separator, the
trainer and the exporter read these declarations; nothing matches a ``model.type`` by prefix.

Builders are named as ``"module:function"`` strings and imported only when a model is built,
so reading the registry is cheap (no TensorFlow).
"""

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import SpleeterError
from ..utils.values import is_int

DEFAULT_MODEL = "unet.unet"
"""``model.type`` used when a configuration names none (upstream's default)."""


class ModelNotFoundError(SpleeterError, ValueError):
    """``model.type`` names no registered architecture (a ``ValueError`` too, as upstream)."""


def model_params(params: dict[str, Any]) -> dict[str, Any]:
    """The configuration's ``model.params`` (empty when absent)."""
    return dict((params.get("model") or {}).get("params") or {})


def model_type(params: dict[str, Any]) -> str:
    """The configuration's ``model.type``, or the default U-Net."""
    model = params.get("model") or {}
    return str(model.get("type", DEFAULT_MODEL))


def _instruments(params: dict[str, Any]) -> list[str]:
    return list(params.get("instrument_list") or [])


def _unet_levels(model: dict[str, Any]) -> int:
    filters = model.get("conv_n_filters", (16, 32, 64, 128, 256, 512))
    return len(filters) if isinstance(filters, list | tuple) else 0


def _unet_multiple(params: dict[str, Any]) -> int:
    return 2 ** _unet_levels(model_params(params))


def _unet_tail_frames(params: dict[str, Any], real_frames: int) -> int:
    """The frames a last block holding ``real_frames`` real ones (zeros after, as upstream
    pads) can be cut to, with exactly the full block's outputs on those frames.

    Past the real frames a full block's activations are not zero (biases on a zero input),
    where a cut block pads with zeros; so every layer must read, for the outputs wanted, only
    positions inside the cut block. Upstream's U-Net reads, per level ``l`` (``1/2**l`` of the
    frames): the final 4x4 convolution (dilation 2) 3 frames ahead, each 5x5 stride-2
    transposed convolution output ``o`` input ``(o + 1) // 2``, each skip its own position,
    and each 5x5 stride-2 convolution output ``i`` input ``2 * i + 3`` (the layers of
    :mod:`spleeter.model.functions.unet`; tests/separation/test_tail_block.py checks the rule
    against the network itself at 5 and 6 levels, also that one step shorter differs).
    Measured on the full-size 4-stem model: 28 real frames cut to 256 give the same outputs
    bit for bit, to 192 they do not.
    """
    levels = _unet_levels(model_params(params))
    T = int(params["T"])
    decoder = [(real_frames + 3) // 2]  # furthest read at levels 1..levels
    for _ in range(1, levels):
        decoder.append((decoder[-1] + 1) // 2)
    encoder = decoder[-1]
    furthest = {levels: encoder}
    for level in range(levels - 1, 0, -1):
        encoder = max(decoder[level - 1], 2 * encoder + 3)
        furthest[level] = encoder
    multiple = 2**levels
    for frames in range(multiple, T, multiple):
        if real_frames + 2 < frames and all(
            furthest[level] < frames >> level for level in furthest
        ):
            return frames
    return T


def _unet_problems(params: dict[str, Any]) -> list[str]:
    filters = model_params(params).get("conv_n_filters")
    if filters is None:
        return []
    if (
        not isinstance(filters, list)
        or not filters
        or not all(is_int(n) and int(n) > 0 for n in filters)
    ):
        return [
            f"model.params.conv_n_filters must be a list of positive integers (got {filters!r})"
        ]
    return []


def _fusion_problems(params: dict[str, Any]) -> list[str]:
    from .encoder_config import EncoderConfig, SSLConfigurationError

    problems = _unet_problems(params)
    try:
        EncoderConfig.from_params(model_params(params).get("encoder"))
    except SSLConfigurationError as error:
        problems.append(str(error))
    return problems


def _seanet_problems(params: dict[str, Any]) -> list[str]:
    from .functions.seanet import problems

    return problems(params)


def _transformer_multiple(params: dict[str, Any]) -> int:
    from .transformer_config import frame_multiple

    return frame_multiple(params)


def _transformer_problems(params: dict[str, Any]) -> list[str]:
    from .transformer_config import transformer_problems

    return transformer_problems(params)


def _transformer_auxiliary(params: dict[str, Any]) -> dict[str, float]:
    from .transformer_config import TransformerConfig

    # the builder reads the same config: it adds the presence head exactly when this says so
    weight = float(TransformerConfig.from_params(model_params(params)).presence_loss_weight)
    return {"presence": weight} if weight > 0 else {}


def _embedding_problems(params: dict[str, Any]) -> list[str]:
    from .functions.embedding import problems

    return _unet_problems(params) + problems(params)


def source_names(prefix: str, k: int) -> list[str]:
    """The names of ``k`` unnamed sources: ``<prefix>_1 .. <prefix>_k``."""
    return [f"{prefix}_{index + 1}" for index in range(k)]


def _cluster_sources(params: dict[str, Any]) -> list[str]:
    """``source_1 .. source_K`` of a family that clusters (``K``: ``cluster.clusters``, else
    one per trained stem)."""
    k = (params.get("cluster") or {}).get("clusters") or len(_instruments(params))
    return source_names("source", int(k))


def _magnitude_outputs(params: dict[str, Any]) -> list[str]:
    return [f"{name}_spectrogram" for name in _instruments(params)]


def _one(params: dict[str, Any]) -> int:
    return 1


@dataclass(frozen=True)
class Architecture:
    """One registered network and its declared needs."""

    type: str
    """The ``model.type`` naming it (upstream's names for upstream's networks)."""
    builder: str
    """``"module:function"``: ``function(input, instruments, params) -> {name: tensor}``."""
    family: str | None
    """The separation family its outputs feed (None: not a separator, e.g. an encoder)."""
    task: str
    """The training task that trains it."""
    frame_multiple: Callable[[dict[str, Any]], int] = _one
    """``T`` must be a multiple of this (given the whole configuration)."""
    bin_multiple: Callable[[dict[str, Any]], int] = _one
    """``F`` must be a multiple of this."""
    tail_frames: Callable[[dict[str, Any], int], int] | None = None
    """``tail_frames(params, n)``: the frames (a multiple of ``frame_multiple``, at most ``T``)
    that a zero-padded last block with ``n`` real frames can be cut to with the same outputs
    on them, so that separation does not compute the padding; None: always ``T`` (a network
    whose every frame sees the whole block, such as attention)."""
    outputs: Callable[[dict[str, Any]], list[str]] = _instruments
    """The names of the sources the network estimates."""
    problems: Callable[[dict[str, Any]], list[str]] = field(default=lambda params: [])
    """What is wrong with the configuration's ``model.params`` for it (empty: usable)."""
    initialised_apart: tuple[str, ...] = ()
    """Checkpoint name prefixes of variables it initialises itself (a pretrained encoder,
    zero-initialised fusion): an ``--init-from`` checkpoint may lack them (a plain U-Net's
    does)."""
    auxiliary_losses: Callable[[dict[str, Any]], dict[str, float]] = field(
        default=lambda params: {}
    )
    """Training-only outputs ``<instrument>_<kind>`` the builder adds, as ``{kind: loss
    weight}`` (kinds: :data:`spleeter.training.objectives.AUXILIARY_LOSSES`); the models of
    separation and export leave them out."""
    graph: str | None = None
    """``"module:function"``: ``function(writer, params, weights)``, the network written
    straight from its checkpoint's tensors with a graph writer
    (:class:`spleeter.model.unet_graph.GraphWriter`: ONNX for exports, OpenVINO compiles it
    directly), without TensorFlow, when it has one; otherwise ONNX exports trace the Keras
    model with tf2onnx and OpenVINO reads that export."""
    objective: str = "magnitudes"
    """What its training minimises (:data:`spleeter.training.objectives.OBJECTIVES`):
    ``magnitudes``, the loss of each stem's estimate; ``deep_clustering``, the affinity loss
    of per-bin embeddings against the stems' dominance labels."""
    network_outputs: Callable[[dict[str, Any]], list[str]] = _magnitude_outputs
    """The names of the network's outputs, in order (what exports name them)."""
    description: str = ""

    def build_function(self) -> Callable[..., dict]:
        return _resolve(self.builder)

    def graph_function(self) -> Callable[..., Any] | None:
        return _resolve(self.graph) if self.graph else None


def _resolve(reference: str) -> Callable[..., Any]:
    module_name, _, function_name = reference.partition(":")
    return getattr(importlib.import_module(module_name), function_name)


ARCHITECTURES: dict[str, Architecture] = {
    entry.type: entry
    for entry in (
        Architecture(
            "unet.unet",
            "spleeter.model.functions.unet:unet",
            family="mask",
            task="separation",
            frame_multiple=_unet_multiple,
            bin_multiple=_unet_multiple,
            tail_frames=_unet_tail_frames,
            problems=_unet_problems,
            graph="spleeter.model.unet_graph:unet",
            description="upstream's U-Net, one sigmoid mask per instrument",
        ),
        Architecture(
            "unet.softmax_unet",
            "spleeter.model.functions.unet:softmax_unet",
            family="mask",
            task="separation",
            frame_multiple=_unet_multiple,
            bin_multiple=_unet_multiple,
            tail_frames=_unet_tail_frames,
            problems=_unet_problems,
            graph="spleeter.model.unet_graph:softmax_unet",
            description="upstream's U-Net with masks normalised across instruments",
        ),
        Architecture(
            "unet.ssl_unet",
            "spleeter.model.functions.fusion:ssl_unet",
            family="mask",
            task="separation",
            frame_multiple=_unet_multiple,
            bin_multiple=_unet_multiple,
            problems=_fusion_problems,
            initialised_apart=("ssl_",),
            description="the U-Net conditioned on a self-supervised encoder's features",
        ),
        Architecture(
            "blstm.blstm",
            "spleeter.model.functions.blstm:blstm",
            family="mask",
            task="separation",
            description="upstream's three bidirectional LSTM layers",
        ),
        Architecture(
            "seanet.autoencoder",
            "spleeter.model.functions.seanet:build_autoencoder",
            family="cluster",
            task="reconstruction",
            problems=_seanet_problems,
            description="a SEANet autoencoder with a Gaussian latent; sources by clustering",
        ),
        Architecture(
            "dc.unet_embedding",
            "spleeter.model.functions.embedding:unet_embedding",
            family="embedding",
            task="separation",
            frame_multiple=_unet_multiple,
            bin_multiple=_unet_multiple,
            outputs=_cluster_sources,
            problems=_embedding_problems,
            objective="deep_clustering",
            network_outputs=lambda params: ["embedding"],
            description="a U-Net giving each time-frequency bin an embedding; sources by "
            "clustering the bins (deep clustering)",
        ),
        Architecture(
            "transformer.zipformer",
            "spleeter.model.functions.transformer:zipformer",
            family="mask",
            task="separation",
            frame_multiple=_transformer_multiple,
            problems=_transformer_problems,
            auxiliary_losses=_transformer_auxiliary,
            initialised_apart=("presence_head",),
            description="a Zipformer-style band-split transformer with per-stem class tokens",
        ),
        Architecture(
            "ssl.encoder",
            "spleeter.model.ssl_encoder:build_pretraining_model",
            family=None,
            task="masked_prediction",
            outputs=lambda params: [],
            description="the HuBERT-style SSL encoder (spleeter pretrain)",
        ),
    )
}
"""Every architecture, by ``model.type``."""


def architecture(params_or_type: dict[str, Any] | str) -> Architecture:
    """The registered architecture of a configuration (or of a ``model.type``).

    Raises:
        ModelNotFoundError: the type is not registered (upstream's message).
    """
    name = params_or_type if isinstance(params_or_type, str) else model_type(params_or_type)
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise ModelNotFoundError(f"No model function {name} found") from None


def architecture_problems(params: dict[str, Any]) -> list[str]:
    """What keeps the configuration's network from being built, each in one phrase: an
    unknown type, unusable ``model.params``, ``T`` or ``F`` not a multiple of what it needs."""
    try:
        entry = architecture(params)
    except ModelNotFoundError as error:
        known = ", ".join(sorted(ARCHITECTURES))
        return [f"{error} (known: {known})"]
    problems = entry.problems(params)
    if problems:
        return problems
    for key, multiple in (("T", entry.frame_multiple), ("F", entry.bin_multiple)):
        value = params.get(key)
        needed = multiple(params)
        if is_int(value) and int(value) > 0 and int(value) % needed:
            problems.append(
                f"{key} ({value}) must be a multiple of {needed} for {entry.type} "
                f"(its time/frequency reduction)"
            )
    return problems
