"""The SSL encoder's architecture (``model.params.encoder``), as a frozen dataclass.

An architecture description: it lives with the networks (the encoder layers, the fused U-Net)
so that building a model needs nothing from the pretraining procedure above it.
"""

from dataclasses import asdict, dataclass, fields
from typing import Any

from .. import SpleeterError


class SSLConfigurationError(SpleeterError, ValueError):
    """The SSL part of a configuration is missing or has unusable values (all listed)."""


@dataclass(frozen=True)
class EncoderConfig:
    """Architecture of the SSL encoder (``model.params.encoder``).

    The input is the log-mel spectrogram of the mixture on the separator's STFT frames
    (``n_mels`` Slaney mel bands between ``fmin`` and ``fmax`` Hz, computed from the first
    ``F`` bins of a ``frame_length``-point STFT at ``sample_rate``); every layer keeps the frame
    rate (time stride 1), so there is one feature frame per STFT frame.
    """

    sample_rate: int = 44100
    frame_length: int = 4096
    n_mels: int = 64
    fmin: float = 0.0
    fmax: float | None = None
    """Upper edge of the mel bands; None: the frequency of bin ``F`` (the whole input band)."""
    conv_layers: int = 2
    conv_channels: int = 128
    conv_kernel: int = 5
    dim: int = 128
    layers: int = 4
    heads: int = 4
    ff_dim: int = 512
    pos_conv_kernel: int = 32
    pos_conv_groups: int = 8
    dropout: float = 0.1
    layer_norm_epsilon: float = 1e-5

    @classmethod
    def from_params(cls, values: dict[str, Any] | None) -> "EncoderConfig":
        """The encoder of a ``model.params.encoder`` mapping (missing keys take defaults).

        Raises:
            SSLConfigurationError: unknown keys or unusable values (all listed).
        """
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise SSLConfigurationError(
                f"Unknown encoder key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})"
            )
        config = cls(**values)
        problems = config.problems()
        if problems:
            raise SSLConfigurationError("Unusable encoder configuration: " + "; ".join(problems))
        return config

    def problems(self) -> list[str]:
        """What is wrong with these values (empty when usable)."""
        problems = []
        for name in (
            "sample_rate",
            "frame_length",
            "n_mels",
            "conv_layers",
            "conv_channels",
            "conv_kernel",
            "dim",
            "layers",
            "heads",
            "ff_dim",
            "pos_conv_kernel",
            "pos_conv_groups",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                problems.append(f"{name} must be a positive integer (got {value!r})")
        if problems:
            return problems
        if self.conv_kernel % 2 == 0:
            problems.append(f"conv_kernel must be odd (got {self.conv_kernel})")
        if self.dim % self.heads:
            problems.append(f"dim ({self.dim}) must be a multiple of heads ({self.heads})")
        if self.dim % self.pos_conv_groups:
            problems.append(
                f"dim ({self.dim}) must be a multiple of pos_conv_groups ({self.pos_conv_groups})"
            )
        if not 0.0 <= float(self.dropout) < 1.0:
            problems.append(f"dropout must be in [0, 1) (got {self.dropout!r})")
        if self.fmax is not None and not float(self.fmin) < float(self.fmax):
            problems.append(f"fmin ({self.fmin}) must be below fmax ({self.fmax})")
        return problems

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def mel_fmax(self, n_bins: int) -> float:
        """Upper edge of the mel bands for an input of ``n_bins`` STFT bins."""
        band = n_bins * self.sample_rate / self.frame_length
        top = min(band, self.sample_rate / 2)
        return top if self.fmax is None else min(float(self.fmax), top)
