"""The ``spleeter evaluate`` flow: separate every test track, score them in parallel, report.

Output layout under the output path (upstream's, plus the summary files and figures)::

    audio/test/<track>/<instrument>.wav           separated stems (16-bit WAV, whole track)
    metrics/matching/<track>.json                 unnamed sources (clusters): which estimate
                                                  was scored as which stem
    metrics/test/<track>.json                     museval-v4 scores (museval's JSON schema)
    metrics/fast_bss_eval/test/<track>.json       fast_bss_eval scores (same schema)
    metrics/summary.csv, tracks.csv, summary.json medians, labelled by protocol
    metrics/plots/*.png                           SDR box plots, spectrograms of one track

Scoring runs in worker processes started with ``spawn`` (the parent holds TensorFlow's threads,
which ``fork`` must not copy); each worker limits its BLAS to one thread when ``threadpoolctl``
is available, so ``--jobs`` is the number of busy cores.
"""

import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from .. import SpleeterError
from ..utils.logging import logger
from ..utils.versions import package_version
from . import (
    EVALUATION_AUDIO_DIRECTORY,
    EVALUATION_INSTRUMENTS,
    EVALUATION_METRICS_DIRECTORY,
    EVALUATION_SPLIT,
    MUSEVAL_PROTOCOL,
    PROTOCOL_METRICS,
    MetricsChoice,
)
from .metrics import HOP_SECONDS, WINDOW_SECONDS, score_track
from .musdb_io import ACCOMPANIMENT, Track, check_references, find_tracks, load_estimates
from .report import (
    TrackMedians,
    compare,
    frame_medians,
    load_summary,
    log_comparison,
    log_summary,
    per_track_lists,
    summarize,
    track_document,
    track_json_path,
    write_json,
    write_summary,
)

PLOTS_DIRECTORY = "plots"
"""Sub-directory of ``metrics`` that receives the figures."""
MATCHING_DIRECTORY = "matching"
"""Sub-directory of ``metrics`` recording which unnamed estimate was scored as which stem."""


@dataclass(frozen=True)
class ScoringJob:
    """Everything a worker process needs to score one track."""

    track: Track
    estimates_dir: Path
    metrics_dir: Path
    instruments: tuple[str, ...]
    protocols: tuple[str, ...]
    window: float = WINDOW_SECONDS
    hop: float = HOP_SECONDS
    sources: tuple[str, ...] | None = None
    """Unnamed sources (``source_1`` ...) written for this track, matched to the stems
    ``instruments`` by the best permutation of SI-SDR before scoring; None: the estimates are
    named after the stems."""


@dataclass(frozen=True)
class ScoredTrack:
    """A worker's answer: the track's medians over frames, per protocol."""

    name: str
    medians: dict[str, TrackMedians]
    seconds: float


def ordered_instruments(instruments: list[str]) -> list[str]:
    """MUSDB's targets first in museval's order, then the others in the configuration's."""
    known = (*EVALUATION_INSTRUMENTS, ACCOMPANIMENT)
    return [name for name in known if name in instruments] + [
        name for name in instruments if name not in known
    ]


def common_stems(tracks: list[Track]) -> list[str]:
    """The stems every track has, MUSDB's first (what unnamed sources are matched to)."""
    shared = set(tracks[0].stems())
    for track in tracks[1:]:
        shared &= set(track.stems())
    if not shared:
        raise SpleeterError("The tracks share no stem to match the model's sources to")
    return ordered_instruments(sorted(shared))


def score_track_files(job: ScoringJob) -> ScoredTrack:
    """Score one separated track under each protocol and write its JSON files."""
    start = time.perf_counter()
    instruments = list(job.instruments)
    references, rate = job.track.load_references(instruments)
    if job.sources is None:
        estimates, estimate_rate = load_estimates(job.estimates_dir, instruments)
    else:
        found, estimate_rate = load_estimates(job.estimates_dir, list(job.sources))
        estimates = _matched_estimates(job, references, found)
    if estimate_rate != rate:
        raise SpleeterError(
            f"Track {job.track.name}: references at {rate} Hz, separated files at "
            f"{estimate_rate} Hz (evaluate a model whose sample_rate is the dataset's)"
        )
    medians: dict[str, TrackMedians] = {}
    scored = {name: references[name] for name in instruments if name in estimates}
    for protocol in job.protocols:
        scores = score_track(scored, estimates, rate, protocol, job.window, job.hop)
        _unscored_as_nan(scores, instruments)
        document = track_document(scores)
        write_json(document, track_json_path(job.metrics_dir, protocol, job.track.name))
        medians[protocol] = frame_medians(document, PROTOCOL_METRICS[protocol])
    return ScoredTrack(job.track.name, medians, time.perf_counter() - start)


def _single_threaded_blas() -> None:
    """Worker initialiser: one BLAS thread per process (the processes are the parallelism)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(1)


def score_tracks(
    jobs: list[ScoringJob],
    processes: int,
) -> dict[str, ScoredTrack]:
    """Score every job, in ``processes`` worker processes (in this one when 1); returns the
    results by track name, in job order. The first failure cancels what has not started."""
    results: dict[str, ScoredTrack] = {}

    def done(result: ScoredTrack) -> None:
        results[result.name] = result
        logger.info(f"Scored {result.name} ({len(results)}/{len(jobs)}, {result.seconds:.1f} s)")

    if processes <= 1 or len(jobs) <= 1:
        for job in jobs:
            done(score_track_files(job))
    else:
        pool = ProcessPoolExecutor(
            max_workers=min(processes, len(jobs)),
            mp_context=get_context("spawn"),
            initializer=_single_threaded_blas,
        )
        try:
            futures = [pool.submit(score_track_files, job) for job in jobs]
            for future in as_completed(futures):
                done(future.result())
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
    return {job.track.name: results[job.track.name] for job in jobs}


def _matched_estimates(
    job: ScoringJob, references: dict[str, Any], found: dict[str, Any]
) -> dict[str, Any]:
    """``found`` estimates renamed after the stems they match best (a stem that no estimate
    matches is left out: museval scores a window NaN for every target when one estimate is
    silent), the matching written to ``metrics/matching/<track>.json``."""
    from .cluster_metrics import match_sources
    from .metrics import match_length

    n_samples = len(next(iter(references.values())))
    found = {name: match_length(audio, n_samples) for name, audio in found.items()}
    matching = match_sources(references, found)
    write_json(
        {"track": job.track.name, "matching": matching, "sources": list(found)},
        job.metrics_dir / MATCHING_DIRECTORY / f"{job.track.name}.json",
    )
    return {stem: found[name] for stem, name in matching.items() if name is not None}


def _unscored_as_nan(scores: Any, instruments: list[str]) -> None:
    """Give the stems no estimate was matched to NaN in every window (as a silent estimate
    scores), after the scored ones (whose order is museval's)."""
    import numpy as np

    windows = len(next(iter(next(iter(scores.targets.values())).values())))
    for name in instruments:
        if name not in scores.targets:
            scores.targets[name] = {metric: np.full(windows, np.nan) for metric in scores.metrics}


def separate_tracks(
    separator: Any, tracks: list[Track], adapter: Any, destination: Path
) -> dict[str, list[str]]:
    """Separate each whole track into ``destination/<track>/<instrument>.wav`` (16-bit WAV,
    no 600 s cap: upstream's evaluation cropped tracks to their first 600 s); the sources
    written, per track. A model with unnamed sources (decided per track) is run in memory,
    so that exactly this run's files are scored."""
    from ..audio import Codec
    from .musdb_io import WAV_LAYOUT

    written: dict[str, list[str]] = {}
    for index, track in enumerate(tracks, start=1):
        logger.info(f"Separating {track.name} ({index}/{len(tracks)})")
        escaped = track.name.replace("{", "{{").replace("}", "}}")
        output = {
            "filename_format": f"{escaped}/{{instrument}}.{{codec}}",
            "codec": Codec.WAV,
            "bitrate": "128k",
            "synchronous": False,
        }
        if track.layout == WAV_LAYOUT and separator.named_sources:
            written[track.name] = list(separator.instruments)
            separator.separate_to_file(
                str(track.mixture_path),
                str(destination),
                audio_adapter=adapter,
                offset=0,
                duration=None,
                **output,
            )
        else:
            waveform = track.load_mixture(adapter, separator.sample_rate)
            sources = separator.separate(waveform, str(track.mixture_path))
            written[track.name] = list(sources)
            separator.save_to_file(
                sources, str(track.mixture_path), str(destination), audio_adapter=adapter, **output
            )
    separator.join()
    return written


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in " -_.()" else "_" for c in name)


def draw_plots(
    results: dict[str, dict[str, TrackMedians]],
    instruments: list[str],
    first: Track,
    audio_dir: Path,
    plots_dir: Path,
    adapter: Any,
    sample_rate: int,
    matching: dict[str, str | None] | None = None,
) -> list[Path]:
    """Box plots of the per-track SDR (one per protocol) and the spectrograms of ``first``
    (``matching``: the estimate file scored as each stem, for unnamed sources)."""
    import numpy as np

    from . import plots
    from .musdb_io import read_wav

    paths = [
        plots.metric_boxplot(
            per_track, instruments, plots_dir / f"sdr_boxplot_{protocol}.png", protocol
        )
        for protocol, per_track in results.items()
    ]
    references, rate = first.load_references(instruments)
    files = matching or {name: name for name in instruments}
    estimates = {
        name: read_wav(audio_dir / first.name / f"{files[name]}.wav")[0]
        if files.get(name)
        else np.zeros_like(references[name])
        for name in instruments
    }
    paths.append(
        plots.spectrogram_figure(
            first.load_mixture(adapter, sample_rate),
            estimates,
            references,
            rate,
            plots_dir / f"spectrograms_{_safe_name(first.name)}.png",
            f"{first.name}: mixture, estimates and references",
        )
    )
    return paths


def _read_matching(metrics_dir: Path, track: Track) -> dict[str, str | None]:
    import json

    path = metrics_dir / MATCHING_DIRECTORY / f"{track.name}.json"
    return json.loads(path.read_text())["matching"]


def _has_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        logger.debug("matplotlib is not installed: no plots")
        return False
    return True


def run_evaluation(
    params_filename: str,
    mus_dir: str,
    output_path: str,
    adapter: str | None = None,
    mwf: bool = False,
    metrics: MetricsChoice = MetricsChoice.museval,
    jobs: int | None = None,
    plots: bool = True,
    compare_with: str | None = None,
) -> dict[str, dict[str, list[float]]]:
    """Separate the test tracks of ``mus_dir`` with a model and score the separations.

    Returns:
        ``{instrument: {metric: [median over frames, one per track]}}`` for the museval-v4
        protocol (fast_bss_eval when only it ran), as upstream's ``evaluate`` returned.

    Raises:
        SpleeterError: no dataset or track, missing reference, unreadable file...
    """
    from ..audio.adapter import AudioAdapter
    from ..separator import Separator

    tracks = find_tracks(mus_dir)
    separator = Separator(params_filename, MWF=mwf)
    if separator.named_sources:
        instruments = ordered_instruments(separator.instruments)
    else:
        instruments = common_stems(tracks)
        logger.info(
            "The model's sources are unnamed: each track's are matched to its stems "
            f"({', '.join(instruments)}) by the best permutation of SI-SDR, then scored"
        )
    check_references(tracks, instruments)
    previous = load_summary(compare_with) if compare_with else None
    audio_adapter = AudioAdapter.get(adapter)
    output = Path(output_path)
    audio_dir = output / EVALUATION_AUDIO_DIRECTORY / EVALUATION_SPLIT
    metrics_dir = output / EVALUATION_METRICS_DIRECTORY
    protocols = MetricsChoice(metrics).protocols

    written = separate_tracks(separator, tracks, audio_adapter, audio_dir)
    matched = not separator.named_sources

    processes = max(1, min(jobs or os.cpu_count() or 1, len(tracks)))
    logger.info(
        f"Starting musdb evaluation with {', '.join(protocols)} on {len(tracks)} track(s), "
        f"{processes} process(es) (this could be long) ..."
    )
    jobs_list = [
        ScoringJob(
            track,
            audio_dir / track.name,
            metrics_dir,
            tuple(instruments),
            protocols,
            sources=tuple(written[track.name]) if matched else None,
        )
        for track in tracks
    ]
    scored = score_tracks(jobs_list, processes)
    logger.info("musdb evaluation done")

    results = {
        protocol: {name: track.medians[protocol] for name, track in scored.items()}
        for protocol in protocols
    }
    settings = {
        "spleeter_version": package_version("spleeter"),
        "params_filename": params_filename,
        "mwf": mwf,
        "mus_dir": os.path.abspath(mus_dir),
        "tracks": [track.name for track in tracks],
        "window_seconds": WINDOW_SECONDS,
        "hop_seconds": HOP_SECONDS,
        "versions": {name: package_version(name) for name in ("museval", "musdb", "fast-bss-eval")},
    }
    for path in write_summary(metrics_dir, results, instruments, settings):
        logger.info(f"File {path} written")
    medians = {
        protocol: summarize(per_track, instruments, PROTOCOL_METRICS[protocol])[0]
        for protocol, per_track in results.items()
    }
    for protocol in protocols:
        log_summary(protocol, medians[protocol])
    if previous is not None:
        log_comparison(compare(medians, previous), str(compare_with))
    if plots and _has_matplotlib():
        for path in draw_plots(
            results,
            instruments,
            tracks[0],
            audio_dir,
            metrics_dir / PLOTS_DIRECTORY,
            audio_adapter,
            separator.sample_rate,
            _read_matching(metrics_dir, tracks[0]) if matched else None,
        ):
            logger.info(f"File {path} written")
    primary = MUSEVAL_PROTOCOL if MUSEVAL_PROTOCOL in protocols else protocols[0]
    return per_track_lists(results[primary], instruments, PROTOCOL_METRICS[primary])
