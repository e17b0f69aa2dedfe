"""Evaluation reports: per-track JSON, medians, summary files, printed table, comparison.

Per-track JSON follows museval's schema (``museval/musdb.schema.json``) and its conventions:
values quantised to 5 decimals, infinities written as NaN, NaN written as the bare ``NaN``
token (as museval's ``TrackStore.json`` does). A top-level ``protocol`` field names the
protocol (``museval-v4`` or ``fast_bss_eval``).

Aggregation is upstream's: for each track and target, the median over frames of the JSON
values, NaN frames ignored; then the median over tracks. Upstream let a NaN track median make
the overall median NaN; here tracks with a NaN median are left out (as museval's ``EvalStore``
does) and the number of tracks used is recorded.
"""

import csv
import json
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from .. import SpleeterError
from ..utils.logging import logger
from ..utils.versions import package_version
from . import EVALUATION_SPLIT, FAST_PROTOCOL, MUSEVAL_PROTOCOL, PROTOCOL_METRICS
from .metrics import TrackScores

SUMMARY_CSV = "summary.csv"
"""Median over tracks, one row per protocol, instrument and metric."""

TRACKS_CSV = "tracks.csv"
"""Median over frames, one row per protocol, track, instrument and metric."""

SUMMARY_JSON = "summary.json"
"""Both of the above, with the run's settings; what ``--compare`` reads."""

SUMMARY_FORMAT = 1
"""Version of the ``summary.json`` layout."""

AGGREGATION = "median over frames (NaN frames ignored), then median over tracks (NaN ignored)"

PROTOCOL_DESCRIPTIONS: dict[str, str] = {
    MUSEVAL_PROTOCOL: (
        "museval 0.4 BSS Eval v4 (source images, 512-tap time-invariant filters, 1 s windows): "
        "comparable with published MUSDB18 tables and upstream spleeter evaluate"
    ),
    FAST_PROTOCOL: (
        "fast_bss_eval bss_eval_sources per channel (512-tap filter fitted per window) and "
        "SI-SDR, 1 s windows: not comparable with published tables"
    ),
}
"""What each protocol label means, written next to its numbers."""

TrackMedians = dict[str, dict[str, float]]
"""``{instrument: {metric: median over frames}}`` of one track."""


def quantize(value: float) -> float:
    """museval's rounding of a score: 5 decimals, infinities become NaN."""
    if math.isinf(value) or math.isnan(value):
        return math.nan
    return float(Decimal(value).quantize(Decimal(".00001")))


def track_document(scores: TrackScores) -> dict[str, Any]:
    """The museval-schema document of a track's framewise scores."""
    names = ("SDR", "SIR", "SAR") + tuple(
        m for m in scores.metrics if m not in ("SDR", "SIR", "SAR")
    )
    targets = []
    for name, values in scores.targets.items():
        n_frames = len(values["SDR"])
        frames = [
            {
                "time": k * scores.hop,
                "duration": scores.window,
                "metrics": {metric: quantize(float(values[metric][k])) for metric in names},
            }
            for k in range(n_frames)
        ]
        targets.append({"name": name, "frames": frames})
    document: dict[str, Any] = {"targets": targets}
    if scores.protocol == MUSEVAL_PROTOCOL:
        document["museval_version"] = package_version("museval", "unknown")
    else:
        document["fast_bss_eval_version"] = package_version("fast-bss-eval", "unknown")
    document["protocol"] = scores.protocol
    return document


def track_json_path(metrics_dir: Path, protocol: str, track: str) -> Path:
    """Where a track's JSON goes: ``metrics/test/<track>.json`` for museval-v4 (upstream's
    place, readable by museval's tools), ``metrics/fast_bss_eval/test/<track>.json`` else."""
    base = metrics_dir if protocol == MUSEVAL_PROTOCOL else metrics_dir / protocol
    return base / EVALUATION_SPLIT / f"{track}.json"


def write_json(document: Any, path: Path) -> None:
    """Write ``document`` (NaN as museval writes it), creating the parent directories."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, allow_nan=True) + "\n")


def _median(values: list[float]) -> float:
    return float(np.median(values)) if values else math.nan


def frame_medians(document: dict[str, Any], metrics: tuple[str, ...]) -> TrackMedians:
    """Upstream's per-track figure: the median over frames of each metric, NaN ignored."""
    return {
        target["name"]: {
            metric: _median(
                [
                    frame["metrics"][metric]
                    for frame in target["frames"]
                    if not math.isnan(frame["metrics"][metric])
                ]
            )
            for metric in metrics
        }
        for target in document["targets"]
    }


def summarize(
    per_track: dict[str, TrackMedians], instruments: list[str], metrics: tuple[str, ...]
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, int]]]:
    """The median over tracks of each instrument and metric, and how many tracks it used."""
    medians: dict[str, dict[str, float]] = {}
    counts: dict[str, dict[str, int]] = {}
    for instrument in instruments:
        medians[instrument], counts[instrument] = {}, {}
        for metric in metrics:
            values = [
                track[instrument][metric]
                for track in per_track.values()
                if not math.isnan(track[instrument][metric])
            ]
            medians[instrument][metric] = _median(values)
            counts[instrument][metric] = len(values)
    return medians, counts


def per_track_lists(
    per_track: dict[str, TrackMedians], instruments: list[str], metrics: tuple[str, ...]
) -> dict[str, dict[str, list[float]]]:
    """Upstream ``evaluate``'s return value: ``{instrument: {metric: [one value per track]}}``."""
    return {
        instrument: {
            metric: [track[instrument][metric] for track in per_track.values()]
            for metric in metrics
        }
        for instrument in instruments
    }


def _json_number(value: float) -> float | None:
    return None if math.isnan(value) else value


def write_summary(
    metrics_dir: Path,
    results: dict[str, dict[str, TrackMedians]],
    instruments: list[str],
    settings: dict[str, Any],
) -> list[Path]:
    """Write ``summary.csv``, ``tracks.csv`` and ``summary.json`` under ``metrics_dir``.

    Args:
        results: ``{protocol: {track: {instrument: {metric: median over frames}}}}``.
        settings: what produced the numbers (configuration, MWF, dataset...), stored as is.
    """
    metrics_dir.mkdir(parents=True, exist_ok=True)
    protocols: dict[str, Any] = {}
    summary_rows, track_rows = [], []
    for protocol, per_track in results.items():
        metrics = PROTOCOL_METRICS[protocol]
        medians, counts = summarize(per_track, instruments, metrics)
        for instrument in instruments:
            for metric in metrics:
                summary_rows.append(
                    [protocol, instrument, metric, medians[instrument][metric]]
                    + [counts[instrument][metric]]
                )
                for track, values in per_track.items():
                    track_rows.append(
                        [protocol, track, instrument, metric, values[instrument][metric]]
                    )
        protocols[protocol] = {
            "description": PROTOCOL_DESCRIPTIONS[protocol],
            "metrics": list(metrics),
            "median": {i: {m: _json_number(medians[i][m]) for m in metrics} for i in instruments},
            "tracks_used": counts,
            "tracks": {
                track: {i: {m: _json_number(values[i][m]) for m in metrics} for i in instruments}
                for track, values in per_track.items()
            },
        }
    paths = [metrics_dir / SUMMARY_CSV, metrics_dir / TRACKS_CSV, metrics_dir / SUMMARY_JSON]
    _write_csv(paths[0], ["protocol", "instrument", "metric", "median", "tracks"], summary_rows)
    _write_csv(paths[1], ["protocol", "track", "instrument", "metric", "median"], track_rows)
    document = {
        "format": SUMMARY_FORMAT,
        **settings,
        "instruments": list(instruments),
        "aggregation": AGGREGATION,
        "protocols": protocols,
    }
    paths[2].write_text(json.dumps(document, indent=2, allow_nan=False) + "\n")
    return paths


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(header)
        for row in rows:
            writer.writerow([f"{v:.6f}" if isinstance(v, float) else v for v in row])


def log_summary(protocol: str, medians: dict[str, dict[str, float]]) -> None:
    """Print the table as upstream did (``<instrument>:`` then ``<METRIC>: <value>`` lines),
    under a line that names the protocol."""
    logger.info(
        f"[{protocol}] median over frames, then over tracks ({PROTOCOL_DESCRIPTIONS[protocol]})"
    )
    for instrument, values in medians.items():
        logger.info(f"{instrument}:")
        for metric in PROTOCOL_METRICS[protocol]:
            logger.info(f"{metric}: {values[metric]:.3f}")


def load_summary(path: str | Path) -> dict[str, dict[str, dict[str, float]]]:
    """The medians of an earlier ``summary.json``: ``{protocol: {instrument: {metric: v}}}``.

    Raises:
        SpleeterError: the file is missing or is not a summary.
    """
    try:
        document = json.loads(Path(path).read_text())
        protocols = document["protocols"]
        return {
            protocol: {
                instrument: {
                    metric: math.nan if value is None else float(value)
                    for metric, value in values.items()
                }
                for instrument, values in entry["median"].items()
            }
            for protocol, entry in protocols.items()
        }
    except OSError as error:
        raise SpleeterError(f"Cannot read {path}: {error.strerror or error}") from error
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise SpleeterError(f"{path} is not an evaluation summary.json ({error!r})") from error


def compare(
    current: dict[str, dict[str, dict[str, float]]],
    previous: dict[str, dict[str, dict[str, float]]],
) -> list[tuple[str, str, str, float, float, float]]:
    """``(protocol, instrument, metric, now, before, now - before)`` for every number present
    in both runs (same protocol label: numbers of different protocols are never compared)."""
    rows = []
    for protocol, instruments in current.items():
        for instrument, values in instruments.items():
            for metric, value in values.items():
                before = previous.get(protocol, {}).get(instrument, {}).get(metric)
                if before is not None:
                    rows.append((protocol, instrument, metric, value, before, value - before))
    return rows


def log_comparison(rows: list[tuple[str, str, str, float, float, float]], source: str) -> None:
    """Print the differences with an earlier run."""
    if not rows:
        logger.warning(f"Nothing to compare with {source}: no common protocol and instrument")
        return
    logger.info(f"Compared with {source} (now - before):")
    for protocol, instrument, metric, value, before, delta in rows:
        logger.info(
            f"[{protocol}] {instrument} {metric}: {value:.3f} (before {before:.3f}, {delta:+.3f})"
        )
