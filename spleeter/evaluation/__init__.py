"""Evaluation of separation quality on a MUSDB-layout dataset (``spleeter evaluate``).

Modules, one concept each:

* :mod:`.metrics`: framewise BSS Eval scores of one track, with two protocols:
  ``museval-v4`` (museval's BSS Eval v4, the numbers of published tables) and
  ``fast_bss_eval`` (SDR/SIR/SAR of ``bss_eval_sources`` per channel, plus SI-SDR).
* :mod:`.musdb_io`: finding the tracks of a MUSDB root (WAV or ``.stem.mp4`` layout) and
  reading their mixtures, references and estimates.
* :mod:`.report`: museval-compatible per-track JSON, medians, summary CSV/JSON, printed table,
  comparison with an earlier summary.
* :mod:`.plots`: SDR box plot and spectrogram figure (matplotlib, PNG).
* :mod:`.pipeline`: the whole ``evaluate`` flow (separate, score in parallel, report).

This package root only holds constants, so importing it is cheap.
"""

from enum import StrEnum

EVALUATION_SPLIT: str = "test"
"""The MUSDB subset that is evaluated."""

EVALUATION_METRICS_DIRECTORY: str = "metrics"
"""Sub-directory of the output path that receives the scores."""

EVALUATION_AUDIO_DIRECTORY: str = "audio"
"""Sub-directory of the output path that receives the separated audio."""

EVALUATION_MIXTURE: str = "mixture.wav"
"""File name of a track's mixture in the WAV layout."""

EVALUATION_INSTRUMENTS: tuple[str, ...] = ("vocals", "drums", "bass", "other")
"""The MUSDB instruments, in MUSDB's (and museval's) target order."""

EVALUATION_METRICS: tuple[str, ...] = ("SDR", "SAR", "SIR", "ISR")
"""museval's metrics, in the order upstream printed them."""

FAST_METRICS: tuple[str, ...] = ("SDR", "SAR", "SIR", "SI-SDR")
"""fast_bss_eval's metrics, in the order they are printed."""

MUSEVAL_PROTOCOL: str = "museval-v4"
"""Label of scores computed by museval (BSS Eval v4, images, time-invariant filters)."""

FAST_PROTOCOL: str = "fast_bss_eval"
"""Label of scores computed by fast_bss_eval (``bss_eval_sources`` per channel, SI-SDR)."""

PROTOCOL_METRICS: dict[str, tuple[str, ...]] = {
    MUSEVAL_PROTOCOL: EVALUATION_METRICS,
    FAST_PROTOCOL: FAST_METRICS,
}
"""The metrics of each protocol, in printing order."""


class MetricsChoice(StrEnum):
    """What ``spleeter evaluate --metrics`` computes."""

    museval = "museval"
    fast = "fast"
    both = "both"

    @property
    def protocols(self) -> tuple[str, ...]:
        """The protocol labels this choice computes, museval first."""
        if self is MetricsChoice.museval:
            return (MUSEVAL_PROTOCOL,)
        if self is MetricsChoice.fast:
            return (FAST_PROTOCOL,)
        return (MUSEVAL_PROTOCOL, FAST_PROTOCOL)
