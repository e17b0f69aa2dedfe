"""What ``spleeter models`` lists: every bundled configuration as a model a user can run.

For each ``spleeter:NAME``: its family and stems (from the network registry), sample rate and
band, parameter count (the network is built once, without weights), whether its weights are on
this machine, and where they come from: the release archive the provider would download, or,
for a model without published weights, the command that makes them.
"""

import os
from dataclasses import dataclass
from typing import Any

from .model import architecture, build_model
from .model.checkpoint import checkpoint_problem
from .model.provider import ModelProvider
from .model.provider.github import GithubModelProvider
from .utils.configuration import (
    EMBEDDED_CONFIGURATION_PREFIX,
    embedded_configuration_names,
    load_configuration,
)


@dataclass(frozen=True)
class ModelEntry:
    """One bundled model, as listed."""

    name: str
    model_type: str
    family: str | None
    stems: list[str]
    sample_rate: int
    band_hz: float
    parameters: int | None
    local: bool
    source: str

    def row(self) -> list[str]:
        parameters = "-" if self.parameters is None else f"{self.parameters / 1e6:.1f} M"
        return [
            f"{EMBEDDED_CONFIGURATION_PREFIX}{self.name}",
            self.model_type,
            self.family or "-",
            ",".join(self.stems) or "-",
            f"{self.sample_rate / 1000:g} kHz / {self.band_hz / 1000:.1f} kHz",
            parameters,
            "yes" if self.local else "no",
            self.source,
        ]


HEADER = ["config", "type", "family", "stems", "rate / band", "parameters", "local", "weights"]


def model_entry(name: str, count_parameters: bool = True) -> ModelEntry:
    """The listing of ``spleeter:NAME``."""
    params = load_configuration(f"{EMBEDDED_CONFIGURATION_PREFIX}{name}")
    entry = architecture(params)
    model_dir = str(params.get("model_dir", name))
    local = _local_directory(model_dir)
    unpublished = params.get("model_unpublished")
    if unpublished:
        source = f"train: {unpublished}"
    elif params.get("train_csv") and "path/to" not in str(params["train_csv"]):
        source = f"train: spleeter train -p spleeter:{name} -d DATA"
    else:
        source = GithubModelProvider.from_environ().archive_url(os.path.basename(model_dir))
    return ModelEntry(
        name=name,
        model_type=entry.type,
        family=entry.family,
        stems=entry.outputs(params),
        sample_rate=int(params["sample_rate"]),
        band_hz=int(params["F"]) * int(params["sample_rate"]) / int(params["frame_length"]),
        parameters=_parameters(params) if count_parameters else None,
        local=local,
        source=source,
    )


def model_entries(count_parameters: bool = True) -> list[ModelEntry]:
    return [model_entry(name, count_parameters) for name in embedded_configuration_names()]


def format_table(rows: list[list[str]]) -> str:
    """Left-aligned columns, two spaces apart."""
    widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _local_directory(model_dir: str) -> bool:
    """Whether the provider would find the model's checkpoint here without downloading."""
    directory = ModelProvider.local_directory(model_dir)
    return os.path.isdir(directory) and checkpoint_problem(directory) is None


def _parameters(params: dict[str, Any]) -> int:
    import numpy as np

    entry = architecture(params)
    # an autoencoder's builder takes the whole configuration (audio in, not a spectrogram)
    if entry.task == "reconstruction":
        model = entry.build_function()(params)
    else:
        model = build_model(params)
    return int(sum(np.prod(v.shape) for v in model.trainable_variables))
