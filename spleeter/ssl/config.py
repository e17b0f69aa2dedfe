"""SSL settings read from a configuration: the encoder's architecture and the pretraining run.

One configuration describes both the fused separator and the pretraining of its encoder:

* ``model.params.encoder``: the encoder (mel front end, convolutions, transformer), see
  :class:`EncoderConfig`;
* ``model.params.encoder_dir``: where ``spleeter pretrain`` writes the encoder and where
  ``spleeter train`` initialises the fused separator's encoder from;
* ``pretrain``: the pretraining run (iterations, masking, optimizer), see
  :class:`PretrainSettings`;
* the usual top-level signal keys (``sample_rate``, ``frame_length``, ``frame_step``, ``T``,
  ``F``, ``n_channels``).
"""

from dataclasses import dataclass, field, fields
from typing import Any

from ..model.encoder_config import EncoderConfig, SSLConfigurationError
from ..model.registry import model_params
from ..training.precision import mixed_precision_choice
from ..utils.values import is_int

TARGETS = ("mfcc", "logmel", "layer")
"""What an iteration clusters into units: MFCCs (with deltas) or log-mel frames of the audio
(iteration 1), or the previous iteration's encoder layer outputs (iteration 2 and later)."""


@dataclass(frozen=True)
class IterationSettings:
    """One HuBERT iteration: cluster ``target`` frames into ``units`` and train ``steps``."""

    units: int
    target: str
    steps: int
    layer: int | None = None
    """Encoder layer clustered when ``target`` is ``layer`` (0: front end, ``layers``: last)."""


@dataclass(frozen=True)
class PretrainSettings:
    """Everything the pretraining loop needs besides the data (``pretrain`` section)."""

    encoder_dir: str
    iterations: tuple[IterationSettings, ...]
    frames: int
    batch_size: int = 8
    learning_rate: float = 5e-4
    warmup_steps: int = 1000
    mask_prob: float = 0.08
    mask_length: int = 10
    min_masks: int = 1
    unmasked_weight: float = 0.0
    chunk_duration: float = 20.0
    n_chunks_per_file: int = 4
    kmeans_max_frames: int = 200_000
    kmeans_batch_size: int = 4096
    kmeans_n_init: int = 3
    init_from_previous: bool = False
    save_checkpoints_steps: int = 1000
    save_summary_steps: int = 100
    random_seed: int = 0
    mixed_precision: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


PRETRAIN_DEFAULTS: dict[str, Any] = {
    "batch_size": 8,
    "learning_rate": 5e-4,
    "warmup_steps": 1000,
    "mask_prob": 0.08,
    "mask_length": 10,
    "min_masks": 1,
    "unmasked_weight": 0.0,
    "chunk_duration": 20.0,
    "n_chunks_per_file": 4,
    "kmeans_max_frames": 200_000,
    "kmeans_batch_size": 4096,
    "kmeans_n_init": 3,
    "init_from_previous": False,
    "save_checkpoints_steps": 1000,
    "save_summary_steps": 100,
}
"""Values of the ``pretrain`` keys a configuration leaves out."""

DEFAULT_ITERATIONS: tuple[dict[str, Any], ...] = (
    {"units": 100, "target": "mfcc", "steps": 20000},
    {"units": 500, "target": "layer", "steps": 20000},
)
"""HuBERT's recipe: MFCC units first, then units of the first model's middle layer."""


def encoder_config(params: dict[str, Any]) -> EncoderConfig:
    """The encoder of a configuration (``model.params.encoder``).

    Raises:
        SSLConfigurationError: there is none, or it is unusable.
    """
    encoder = model_params(params).get("encoder")
    if not isinstance(encoder, dict):
        raise SSLConfigurationError(
            "The configuration has no model.params.encoder section (the SSL encoder's "
            "architecture; see docs/ssl.md)"
        )
    return EncoderConfig.from_params(encoder)


def pretrain_settings(
    params: dict[str, Any],
    *,
    max_steps: int | None = None,
    iterations: int | None = None,
    seed: int | None = None,
    mixed_precision: bool | str | None = None,
) -> PretrainSettings:
    """The pretraining run of a configuration, with the command line's overrides.

    ``max_steps`` replaces every iteration's ``steps``; ``iterations`` is the number of
    iterations to run (more than configured repeat the last one's settings); ``seed`` replaces
    ``random_seed``.

    Raises:
        SSLConfigurationError: missing or unusable values (all listed).
    """
    section = params.get("pretrain") or {}
    if not isinstance(section, dict):
        raise SSLConfigurationError("The configuration's pretrain section must be an object")
    values = {**PRETRAIN_DEFAULTS, **section}
    problems: list[str] = []
    encoder = encoder_config(params)
    encoder_dir = model_params(params).get("encoder_dir")
    if not encoder_dir:
        problems.append("model.params.encoder_dir (where the encoder is written) is not set")
    problems += signal_problems(params, encoder)
    frames = values.get("frames", params.get("T"))
    if not _positive_int(frames):
        problems.append(f"pretrain.frames (or T) must be a positive integer (got {frames!r})")
    raw_iterations = values.get("iterations") or list(DEFAULT_ITERATIONS)
    if not isinstance(raw_iterations, list | tuple) or not raw_iterations:
        problems.append("pretrain.iterations must be a non-empty list")
        raw_iterations = list(DEFAULT_ITERATIONS)
    count = len(raw_iterations) if iterations is None else int(iterations)
    if count <= 0:
        problems.append(f"--iterations must be positive (got {count})")
        count = 1
    parsed = []
    for index in range(count):
        entry = dict(raw_iterations[min(index, len(raw_iterations) - 1)])
        if index > 0 and entry.get("target", "layer") != "layer":
            entry["target"] = "layer"  # later iterations always re-cluster the encoder
        parsed.append(_iteration(entry, index, encoder, max_steps, problems))
    for key in (
        "batch_size",
        "mask_length",
        "n_chunks_per_file",
        "kmeans_max_frames",
        "kmeans_batch_size",
        "kmeans_n_init",
        "save_checkpoints_steps",
        "save_summary_steps",
    ):
        if not _positive_int(values.get(key)):
            problems.append(f"pretrain.{key} must be a positive integer (got {values.get(key)!r})")
    if not 0.0 < float(values["mask_prob"]) <= 1.0:
        problems.append(f"pretrain.mask_prob must be in (0, 1] (got {values['mask_prob']!r})")
    if float(values["unmasked_weight"]) < 0:
        problems.append("pretrain.unmasked_weight must be >= 0")
    if float(values["learning_rate"]) <= 0:
        problems.append("pretrain.learning_rate must be > 0")
    if problems:
        raise SSLConfigurationError("Cannot pretrain this configuration: " + "; ".join(problems))
    random_seed = int(params.get("random_seed", 0) if seed is None else seed)
    known = {f.name for f in fields(PretrainSettings)}
    extra = {k: v for k, v in section.items() if k not in known and k != "iterations"}
    return PretrainSettings(
        encoder_dir=str(encoder_dir),
        iterations=tuple(parsed),
        frames=int(frames),
        batch_size=int(values["batch_size"]),
        learning_rate=float(values["learning_rate"]),
        warmup_steps=max(0, int(values["warmup_steps"])),
        mask_prob=float(values["mask_prob"]),
        mask_length=int(values["mask_length"]),
        min_masks=max(0, int(values["min_masks"])),
        unmasked_weight=float(values["unmasked_weight"]),
        chunk_duration=float(values["chunk_duration"]),
        n_chunks_per_file=int(values["n_chunks_per_file"]),
        kmeans_max_frames=int(values["kmeans_max_frames"]),
        kmeans_batch_size=int(values["kmeans_batch_size"]),
        kmeans_n_init=int(values["kmeans_n_init"]),
        init_from_previous=bool(values["init_from_previous"]),
        save_checkpoints_steps=int(values["save_checkpoints_steps"]),
        save_summary_steps=int(values["save_summary_steps"]),
        random_seed=random_seed,
        mixed_precision=mixed_precision_choice(mixed_precision),
        extra=extra,
    )


def signal_problems(params: dict[str, Any], encoder: EncoderConfig) -> list[str]:
    """Disagreements between the configuration's signal keys and the encoder's mel front end
    (which is defined on the STFT of ``sample_rate`` and ``frame_length``)."""
    problems = []
    for key in ("frame_step", "F", "n_channels", "sample_rate", "frame_length"):
        if not _positive_int(params.get(key)):
            problems.append(f"{key} must be a positive integer (got {params.get(key)!r})")
    for key in ("sample_rate", "frame_length"):
        expected = getattr(encoder, key)
        if _positive_int(params.get(key)) and int(params[key]) != expected:
            problems.append(
                f"{key} ({params[key]}) differs from the encoder's (model.params.encoder."
                f"{key} = {expected})"
            )
    return problems


def _iteration(
    entry: dict[str, Any],
    index: int,
    encoder: EncoderConfig,
    max_steps: int | None,
    problems: list[str],
) -> IterationSettings:
    where = f"pretrain.iterations[{index}]"
    target = str(entry.get("target", "mfcc" if index == 0 else "layer"))
    if target not in TARGETS:
        problems.append(f"{where}.target must be one of {', '.join(TARGETS)} (got {target!r})")
    if index == 0 and target == "layer":
        problems.append(f"{where}: the first iteration clusters mfcc or logmel frames")
    units = entry.get("units")
    if not _positive_int(units) or int(units) < 2:
        problems.append(f"{where}.units must be an integer >= 2 (got {units!r})")
        units = 2
    steps = entry.get("steps") if max_steps is None else max_steps
    if not is_int(steps) or int(steps) < 0:
        problems.append(f"{where}.steps must be an integer >= 0 (got {steps!r})")
        steps = 0
    layer = None
    if target == "layer":
        layer = entry.get("layer", max(1, encoder.layers // 2))
        if not is_int(layer) or not 0 <= int(layer) <= encoder.layers:
            problems.append(f"{where}.layer must be in 0..{encoder.layers} (got {layer!r})")
            layer = 0
        layer = int(layer)
    return IterationSettings(units=int(units), target=target, steps=int(steps), layer=layer)


def _positive_int(value: Any) -> bool:
    return is_int(value) and int(value) > 0
