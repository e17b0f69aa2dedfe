"""Shared helpers of the training experiments (``tools/experiments``).

Every experiment works in one work directory (``--work``, default ``/tmp/spleeter-experiments``)
and reuses what an earlier run of any experiment already made there:

```
WORK/data/rendered-<args>/          the rendered songs (python -m spleeter.rendering), once
WORK/data/evalset-<args>/test/      symlinks: the rendered test songs + the MUSDB excerpt
WORK/baselines/mixture-<args>/      the mixture-as-estimate baseline, scored once
WORK/runs/<experiment>/<arm>/       config.json, model/, logs, train.json, eval/
WORK/results/<experiment>.{json,md} the results of one experiment
```

Each step writes a marker when it finished (``train.json``, ``eval/metrics/summary.json``) and is
skipped on the next run, so an interrupted experiment continues where it stopped (a training
run that did not finish is restarted from scratch: its wall-clock budget would be wrong).

Models are trained and evaluated through the command line (``spleeter train``, ``spleeter
pretrain``, ``spleeter evaluate``) in child processes, exactly as a user would run them; the
mixture baseline is scored in this process with ``spleeter.evaluation``'s own functions, under
the same two protocols (museval v4 and fast_bss_eval).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DEFAULT_WORK = Path("/tmp/spleeter-experiments")
INSTRUMENTS = ["vocals", "drums", "bass", "other"]
SAMPLE_RATE = 44100
PROTOCOLS = ("museval-v4", "fast_bss_eval")
SUBSETS = ("rendered", "musdb-excerpt")
SUBSET_TITLES = {
    "rendered": "held-out rendered songs",
    "musdb-excerpt": "real MUSDB excerpt (The Easton Ellises - Falcon 69, 6 s)",
}
EXCERPT_NAME = "The Easton Ellises - Falcon 69"
UPSTREAM_PYTHON = Path(os.environ.get("UPSTREAM_PYTHON", "/work/upstream-venv/bin/python"))
OURS_PROGRESS = re.compile(r"step (\d+)/(\d+): loss ([-+0-9.eEnaif]+) \(([0-9.eE+-]+) steps/s\)")
UPSTREAM_PROGRESS = re.compile(r"loss = ([-+0-9.eEnaif]+), step = (\d+)")
UPSTREAM_RATE = re.compile(r"global_step/sec: ([0-9.eE+-]+)")
VALIDATION = re.compile(
    r"Validation at step (\d+): loss ([0-9.eE+-]+)"  # ours
    r"|Saving dict for global step (\d+): .*\bloss = ([0-9.eE+-]+)"  # upstream's Estimator
)
PARAMETERS = re.compile(r"[Tt]raining (\S+) (?:\(\w+\) )?\(([\d,]+) parameters\)")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def write_json(path: Path, document: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, allow_nan=False, default=str) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def excerpt_path() -> Path:
    """The MUSDB18 excerpt shipped in the stempeg wheel."""
    import stempeg

    path = Path(stempeg.__file__).parent / "data" / f"{EXCERPT_NAME}.stem.mp4"
    if not path.is_file():
        raise SystemExit(f"MUSDB excerpt not found: {path}")
    return path


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        memory = float("nan")
    versions = {}
    for name in ("spleeter", "tensorflow", "keras", "numpy", "museval", "fast-bss-eval"):
        try:
            from importlib.metadata import version

            versions[name] = version(name)
        except Exception:  # noqa: BLE001 - a missing package is just not reported
            versions[name] = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory, 1),
        "gpu": "none used (CUDA_VISIBLE_DEVICES='')",
        "python": platform.python_version(),
        "versions": versions,
        "load_average_at_start": os.getloadavg(),
    }


def base_env() -> dict[str, str]:
    """Environment of every child process: CPU only, unbuffered, deterministic kernels."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env.update(
        PYTHONUNBUFFERED="1",
        PYTHONHASHSEED="0",
        TF_DETERMINISTIC_OPS="1",
        TF_CPP_MIN_LOG_LEVEL="2",
        CUDA_VISIBLE_DEVICES="",
    )
    return env


# --------------------------------------------------------------------------------------
# Child processes
# --------------------------------------------------------------------------------------


def run_command(
    command: Sequence[str],
    log_path: Path,
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    budget_s: float | None = None,
    check: bool = True,
) -> dict[str, Any]:
    """Run ``command``, its output merged into ``log_path`` with arrival times.

    With ``budget_s``, the process gets SIGINT (Ctrl-C: ``spleeter train`` saves the current
    step and exits) once that many seconds have passed since it started. Returns the wall time,
    the exit status, whether it was interrupted and every output line with its time (seconds
    since the start).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log(f"$ {' '.join(map(str, command))}" + (f"  [budget {budget_s:.0f} s]" if budget_s else ""))
    start = time.monotonic()
    process = subprocess.Popen(
        [str(c) for c in command],
        cwd=cwd,
        env=env or base_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        # A script started in the background (``nohup ... &``) ignores SIGINT, and so would
        # its children: Python then installs no KeyboardInterrupt handler and the budget's
        # Ctrl-C would be lost. Give the child the default disposition back.
        preexec_fn=_default_sigint,
    )
    interrupted = threading.Event()
    timer = None
    if budget_s is not None:

        def interrupt() -> None:
            if process.poll() is None:
                interrupted.set()
                process.send_signal(signal.SIGINT)

        timer = threading.Timer(max(budget_s, 0.0), interrupt)
        timer.daemon = True
        timer.start()
    lines: list[tuple[float, str]] = []
    assert process.stdout is not None
    with log_path.open("w") as stream:
        stream.write(f"# {' '.join(map(str, command))}\n")
        for line in process.stdout:
            now = time.monotonic() - start
            line = line.rstrip("\n")
            lines.append((now, line))
            stream.write(f"[{now:9.2f}] {line}\n")
            stream.flush()
    rc = process.wait()
    wall = time.monotonic() - start
    if timer is not None:
        timer.cancel()
    log(
        f"  exit {rc} after {wall:.0f} s"
        + (" (interrupted at budget)" if interrupted.is_set() else "")
    )
    if check and rc != 0 and not interrupted.is_set():
        tail = "\n".join(line for _, line in lines[-30:])
        raise SystemExit(f"command failed ({rc}), see {log_path}:\n{tail}")
    return {"wall_s": wall, "rc": rc, "interrupted": interrupted.is_set(), "lines": lines}


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def spleeter_command() -> list[str]:
    """This checkout's CLI (a git worktree's, not only the installed one), run with this
    interpreter (``base_env`` drops PYTHONPATH, which upstream's interpreter must not see)."""
    return ["env", f"PYTHONPATH={REPO}", sys.executable, "-m", "spleeter"]


def upstream_command() -> list[str]:
    return [str(UPSTREAM_PYTHON.parent / "spleeter")]


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------


def render(
    work: Path,
    songs: int,
    seed: int,
    duration: str,
    test_fraction: float,
    validation_fraction: float,
    jobs: int = 2,
) -> Path:
    """Render the dataset once (reused when ``dataset.json`` says it was made with the same
    arguments); returns its root."""
    name = f"rendered-n{songs}-s{seed}-d{duration}-t{test_fraction:g}-v{validation_fraction:g}"
    root = work / "data" / name
    if (root / "dataset.json").is_file() and (root / "test.csv").is_file():
        return root
    command = [
        sys.executable, "-m", "spleeter.rendering", "-o", root, "--songs", songs, "--seed", seed,
        "--duration", duration, "--test-fraction", test_fraction,
        "--validation-fraction", validation_fraction, "--jobs", jobs,
    ]  # fmt: skip
    if root.exists():
        command.append("--force")
    result = run_command(command, work / "logs" / f"{name}.log")
    log(f"rendered {songs} songs in {result['wall_s']:.0f} s")
    return root


def dataset_summary(root: Path) -> dict[str, Any]:
    """Songs and durations of each split of a rendered dataset."""
    summary: dict[str, Any] = {"root": str(root)}
    manifest = read_json(root / "dataset.json")
    summary["arguments"] = {k: v for k, v in manifest.items() if k not in ("songs",)}
    for split in ("train", "validation", "test"):
        with (root / f"{split}.csv").open() as stream:
            rows = list(csv.DictReader(stream))
        durations = [float(row["duration"]) for row in rows]
        summary[split] = {
            "songs": len(rows),
            "seconds": round(sum(durations), 1),
            "min_s": min(durations) if durations else None,
            "max_s": max(durations) if durations else None,
        }
    return summary


def eval_set(work: Path, rendered: Path) -> tuple[Path, dict[str, list[str]]]:
    """A MUSDB-layout directory holding the rendered test songs and the MUSDB excerpt (as
    symlinks), and the track names of each subset."""
    root = work / "data" / f"evalset-{rendered.name}"
    test = root / "test"
    test.mkdir(parents=True, exist_ok=True)
    rendered_tracks = sorted(p.name for p in (rendered / "test").iterdir() if p.is_dir())
    for name in rendered_tracks:
        link = test / name
        if not link.exists():
            link.symlink_to(rendered / "test" / name, target_is_directory=True)
    excerpt = test / f"{EXCERPT_NAME}.stem.mp4"
    if not excerpt.exists():
        excerpt.symlink_to(excerpt_path())
    return root, {"rendered": rendered_tracks, "musdb-excerpt": [EXCERPT_NAME]}


# --------------------------------------------------------------------------------------
# Configurations
# --------------------------------------------------------------------------------------


def unet_params(filters: Sequence[int] | None) -> dict[str, Any]:
    params: dict[str, Any] = {"conv_activation": "ELU", "deconv_activation": "ELU"}
    if filters is not None:
        params["conv_n_filters"] = list(filters)
    return params


def make_config(
    *,
    rendered: Path,
    model_dir: Path,
    cache_dir: Path,
    model: dict[str, Any],
    T: int,
    F: int = 1024,
    batch_size: int,
    learning_rate: float,
    seed: int,
    save_checkpoints_steps: int,
    max_steps: int = 1_000_000,
    throttle_secs: int = 300,
    chunk_duration: float = 8.0,
    n_chunks_per_song: int = 3,
    **extra: Any,
) -> dict[str, Any]:
    """A 4-stem training configuration with upstream's keys (absolute paths)."""
    config = {
        "train_csv": str(rendered / "train.csv"),
        "validation_csv": str(rendered / "validation.csv"),
        "model_dir": str(model_dir),
        "mix_name": "mix",
        "instrument_list": list(INSTRUMENTS),
        "sample_rate": SAMPLE_RATE,
        "frame_length": 4096,
        "frame_step": 1024,
        "T": T,
        "F": F,
        "n_channels": 2,
        "separation_exponent": 2,
        "mask_extension": "zeros",
        "learning_rate": learning_rate,
        "batch_size": batch_size,
        "training_cache": str(cache_dir / "training"),
        "validation_cache": str(cache_dir / "validation"),
        "train_max_steps": max_steps,
        "throttle_secs": throttle_secs,
        "random_seed": seed,
        "save_checkpoints_steps": save_checkpoints_steps,
        "save_summary_steps": 10,
        "chunk_duration": chunk_duration,
        "n_chunks_per_song": n_chunks_per_song,
        "model": model,
    }
    config.update(extra)
    return config


# --------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------


def latest_step(model_dir: Path) -> int | None:
    state = model_dir / "checkpoint"
    if not state.is_file():
        return None
    match = re.search(r'model_checkpoint_path: "[^"]*model\.ckpt-(\d+)"', state.read_text())
    return int(match.group(1)) if match else None


def progress_points(lines: list[tuple[float, str]], tool: str) -> list[tuple[float, int, float]]:
    """``(seconds since start, step, loss)`` of every progress line of a training log."""
    points = []
    for t, line in lines:
        if tool == "upstream":
            match = UPSTREAM_PROGRESS.search(line)
            if match:
                points.append((t, int(match.group(2)), float(match.group(1))))
        else:
            match = OURS_PROGRESS.search(line)
            if match:
                points.append((t, int(match.group(1)), float(match.group(3))))
    return points


def steady_rate(points: list[tuple[float, int, float]], after_step: int) -> float | None:
    """Steps per second between the first progress line at or after ``after_step`` and the last
    one (excludes start-up: imports, model build, tracing, the first pass over the data)."""
    usable = [(t, s) for t, s, _ in points if s >= after_step]
    if len(usable) < 2 or usable[-1][1] == usable[0][1]:
        return None
    (t0, s0), (t1, s1) = usable[0], usable[-1]
    return (s1 - s0) / (t1 - t0)


def train(
    run_dir: Path,
    config: dict[str, Any],
    rendered: Path,
    *,
    steps: int | None = None,
    budget_s: float | None = None,
    tool: str = "ours",
    resume: bool = False,
    tag: str = "train",
    rate_after_step: int = 100,
    verbose: bool = False,
    init_from: Path | None = None,
    subcommand: str = "train",
    flags: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Train with ``spleeter train`` (ours or upstream's) up to ``steps`` or for ``budget_s``
    seconds of wall time (whichever comes first), a fresh run starting from the weights of
    ``init_from`` when given (``subcommand="pretrain"``: a model that ``spleeter pretrain``
    trains, on the audio below ``rendered``), with more ``flags`` for ours; returns what
    happened (also written to ``run_dir/<tag>.json``, which makes a later call return it
    without training)."""
    marker = run_dir / f"{tag}.json"
    if marker.is_file():
        return read_json(marker)
    model_dir = Path(config["model_dir"])
    if not resume and model_dir.exists():
        shutil.rmtree(model_dir)  # an unfinished run: start again, or its budget is wrong
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path = run_dir / "config.json"
    target = steps if steps is not None else int(config["train_max_steps"])
    if tool == "upstream":  # upstream has no --max-steps: the config says where to stop
        write_json(config_path, dict(config, train_max_steps=target))
        command = [*upstream_command(), "train", "-p", config_path, "-d", rendered, "--verbose"]
    else:
        write_json(config_path, config)
        command = [*spleeter_command(), subcommand, "-p", config_path, "-d", rendered]
        command += ["--max-steps", target, *flags]
        if init_from is not None and not resume:
            command += ["--init-from", init_from]
        if verbose:
            command.append("--verbose")
    start_step = latest_step(model_dir) or 0
    result = run_command(command, run_dir / f"{tag}.log", cwd=run_dir, budget_s=budget_s)
    points = progress_points(result["lines"], tool)
    reached = latest_step(model_dir)
    if reached is None:
        raise SystemExit(f"no checkpoint in {model_dir} after training, see {run_dir}/{tag}.log")
    validations = [
        (int(m.group(1) or m.group(3)), float(m.group(2) or m.group(4)))
        for _, line in result["lines"]
        if (m := VALIDATION.search(line))
    ]
    reported = [
        float(m.group(1)) for _, line in result["lines"] if (m := UPSTREAM_RATE.search(line))
    ]
    first_step_s = points[0][0] if points else None
    parameters = [
        int(m.group(2).replace(",", "")) for _, line in result["lines"]
        if (m := PARAMETERS.search(line))
    ]  # fmt: skip
    document = {
        "tool": tool,
        "command": " ".join(map(str, command)),
        "start_step": start_step,
        "steps_requested": target,
        "budget_s": budget_s,
        "final_step": reached,
        "steps_done": reached - start_step,
        "trainable_parameters": parameters[0] if parameters else None,
        "wall_s": round(result["wall_s"], 1),
        "interrupted_at_budget": result["interrupted"],
        "first_progress_line_s": round(first_step_s, 1) if first_step_s is not None else None,
        "steps_per_s_overall": round((reached - start_step) / result["wall_s"], 4),
        "steps_per_s_steady": _round(steady_rate(points, start_step + rate_after_step), 4),
        "steady_rate_from_step": start_step + rate_after_step,
        "upstream_global_step_per_sec_median": _round(
            statistics.median(reported[1:]) if len(reported) > 1 else None, 4
        ),
        "loss_first": points[0][2] if points else None,
        "loss_last": points[-1][2] if points else None,
        "losses": [(s, v) for _, s, v in points][:: max(1, len(points) // 50)],
        "validation": validations,
    }
    write_json(marker, document)
    log(
        f"  {tool} {tag}: steps {start_step}->{reached} in {result['wall_s']:.0f} s "
        f"(steady {document['steps_per_s_steady']} steps/s), loss {document['loss_first']} -> "
        f"{document['loss_last']}"
    )
    return document


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


# --------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------


def evaluate(run_dir: Path, config: dict[str, Any], evalset: Path, tag: str = "eval",
             jobs: int = 2) -> Path:  # fmt: skip
    """``spleeter evaluate --metrics both`` of a configuration's model on ``evalset``;
    returns its ``summary.json`` (reused when present)."""
    out = run_dir / tag
    summary = out / "metrics" / "summary.json"
    if summary.is_file():
        return summary
    if out.exists():
        shutil.rmtree(out)
    config_path = run_dir / f"{tag}-config.json"
    write_json(config_path, config)
    command = [
        *spleeter_command(), "evaluate", "-p", config_path, "--mus_dir", evalset, "-o", out,
        "--metrics", "both", "--jobs", jobs, "--no-plots",
    ]  # fmt: skip
    result = run_command(command, run_dir / f"{tag}.log", cwd=run_dir)
    write_json(out / "wall.json", {"wall_s": round(result["wall_s"], 1)})
    return summary


def mixture_baseline(work: Path, evalset: Path, jobs: int = 2) -> Path:
    """Score the mixture as the estimate of every stem, under both protocols, with the
    functions ``spleeter evaluate`` uses (16-bit WAV estimates, written by the audio adapter
    that writes the separated files)."""
    from spleeter.audio.adapter import AudioAdapter
    from spleeter.evaluation.musdb_io import find_tracks
    from spleeter.evaluation.pipeline import ScoringJob, score_tracks
    from spleeter.evaluation.report import write_summary

    out = work / "baselines" / f"mixture-{evalset.name}"
    summary = out / "metrics" / "summary.json"
    if summary.is_file():
        return summary
    start = time.monotonic()
    log(f"scoring the mixture-as-estimate baseline on {evalset}")
    tracks = find_tracks(evalset)
    audio_dir = out / "audio" / "test"
    adapter = AudioAdapter.default()
    for track in tracks:
        mixture = track.load_mixture(adapter, SAMPLE_RATE)
        folder = audio_dir / track.name
        folder.mkdir(parents=True, exist_ok=True)
        for instrument in INSTRUMENTS:
            adapter.save(folder / f"{instrument}.wav", mixture, SAMPLE_RATE)
    jobs_list = [
        ScoringJob(track, audio_dir / track.name, out / "metrics", tuple(INSTRUMENTS), PROTOCOLS)
        for track in tracks
    ]
    scored = score_tracks(jobs_list, max(1, min(jobs, len(tracks))))
    results = {p: {name: s.medians[p] for name, s in scored.items()} for p in PROTOCOLS}
    settings = {
        "estimate": "the mixture, for every stem (16-bit WAV)",
        "mus_dir": str(evalset),
        "tracks": [t.name for t in tracks],
    }
    write_summary(out / "metrics", results, list(INSTRUMENTS), settings)
    log(f"  mixture baseline scored in {time.monotonic() - start:.0f} s")
    return summary


def subset_medians(summary_path: Path, subsets: dict[str, list[str]]) -> dict[str, Any]:
    """``{subset: {protocol: {instrument: {metric: median over the subset's tracks}}}}`` from a
    ``summary.json`` (per-track medians over frames; NaN tracks skipped, as evaluate does),
    plus ``mean over tracks`` and the per-track SDRs."""
    document = read_json(summary_path)
    result: dict[str, Any] = {}
    for subset, names in subsets.items():
        result[subset] = {}
        for protocol in PROTOCOLS:
            section = document["protocols"].get(protocol)
            if section is None:
                continue
            tracks = section["tracks"]
            missing = [n for n in names if n not in tracks]
            if missing:
                raise SystemExit(f"{summary_path}: tracks {missing} not scored")
            medians: dict[str, Any] = {}
            for instrument in INSTRUMENTS:
                medians[instrument] = {}
                for metric in section["metrics"]:
                    values = [tracks[n][instrument][metric] for n in names]
                    values = [v for v in values if v is not None and not math.isnan(v)]
                    medians[instrument][metric] = (
                        round(statistics.median(values), 3) if values else None
                    )
                sdrs = [tracks[n][instrument]["SDR"] for n in names]
                medians[instrument]["SDR_tracks"] = sdrs
                finite = [v for v in sdrs if v is not None]
                medians[instrument]["SDR_mean"] = (
                    round(statistics.fmean(finite), 3) if finite else None
                )
            sdr = [medians[i]["SDR"] for i in INSTRUMENTS]
            medians["average_SDR"] = (
                round(statistics.fmean(sdr), 3) if all(v is not None for v in sdr) else None
            )
            result[subset][protocol] = medians
    return result


# --------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------


def _fmt(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def sdr_table(rows: list[tuple[str, dict[str, Any]]], subset: str, protocol: str,
              reference: str | None = None) -> str:  # fmt: skip
    """Markdown table: one row per model, SDR per stem (median over tracks of the medians over
    1-s windows) and their average; with ``reference``, a row of each model's difference."""
    header = "| model | " + " | ".join(INSTRUMENTS) + " | average |"
    lines = [header, "|---|" + "---:|" * (len(INSTRUMENTS) + 1)]
    ref = dict(rows).get(reference) if reference else None
    for name, scores in rows:
        section = scores.get(subset, {}).get(protocol)
        if section is None:
            continue
        cells = [_fmt(section[i]["SDR"]) for i in INSTRUMENTS] + [_fmt(section["average_SDR"])]
        if ref is not None and name != reference:
            base = ref[subset][protocol]
            deltas = [
                None if section[i]["SDR"] is None or base[i]["SDR"] is None
                else section[i]["SDR"] - base[i]["SDR"]
                for i in INSTRUMENTS
            ]  # fmt: skip
            average = (
                None if section["average_SDR"] is None or base["average_SDR"] is None
                else section["average_SDR"] - base["average_SDR"]
            )  # fmt: skip
            cells = [
                f"{c} ({_fmt(d, True)})" for c, d in zip(cells, [*deltas, average], strict=True)
            ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def sdr_tables(rows: list[tuple[str, dict[str, Any]]], reference: str | None = None) -> str:
    """Every subset x protocol table, with headings."""
    parts = []
    for subset in SUBSETS:
        for protocol in PROTOCOLS:
            note = f"; in brackets: difference to {reference}" if reference else ""
            parts.append(f"SDR (dB), {SUBSET_TITLES[subset]}, `{protocol}`{note}")
            parts.append("")
            parts.append(sdr_table(rows, subset, protocol, reference))
            parts.append("")
    return "\n".join(parts)


def average_sdr(scores: dict, subset: str, protocol: str, key: str = "average_SDR") -> float | None:
    """The average SDR of ``subset_medians`` scores (None where not scored)."""
    return scores.get(subset, {}).get(protocol, {}).get(key)


def average_si_sdr(scores: dict, subset: str, protocol: str) -> float | None:
    """Mean over the stems of the median SI-SDR."""
    section = scores.get(subset, {}).get(protocol)
    if not section:
        return None
    values = [section[i].get("SI-SDR") for i in INSTRUMENTS]
    return None if None in values else round(statistics.fmean(values), 3)


def plot_curves(curves: dict, titles: dict, path: Path, title: str) -> None:
    """Average SDR (museval v4) against training wall time, one line per arm, a panel per subset."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(8, 3.2), dpi=90)
    for (subset, label), ax in zip(SUBSET_TITLES.items(), axes, strict=True):
        for arm, points in curves.items():
            xs = [p["wall_s"] / 60 for p in points]
            ys = [p["sdr"][subset] for p in points]
            ax.plot(xs, ys, "o-", label=titles[arm])
        ax.set_title(label, fontsize=8)
        ax.set_xlabel("wall time of training (min)")
        ax.set_ylabel("avg median SDR, museval v4 (dB)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


# --------------------------------------------------------------------------------------
# Command line shared by the experiments
# --------------------------------------------------------------------------------------


def argument_parser(doc: str, *, budget_minutes: float, budget_help: str) -> Any:
    """The command line of a budgeted experiment: common arguments and ``--budget-minutes``."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    add_common_arguments(parser)
    parser.add_argument("--budget-minutes", type=float, default=budget_minutes, help=budget_help)
    return parser


def add_common_arguments(parser: Any) -> None:
    """Work directory and rendered data (the defaults are shared by every experiment, so the
    songs are rendered and the baseline scored once)."""
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="work directory")
    parser.add_argument("--songs", type=int, default=60, help="rendered songs (all splits)")
    parser.add_argument("--data-seed", type=int, default=0, help="rendering seed")
    parser.add_argument("--duration", default="10-30", help="song length (s), or MIN-MAX")
    parser.add_argument("--test-fraction", type=float, default=0.15)
    parser.add_argument("--validation-fraction", type=float, default=0.05)
    parser.add_argument("--jobs", type=int, default=2, help="rendering / scoring processes")
    parser.add_argument(
        "--smoke", action="store_true",
        help="tiny data, models and budgets in WORK-smoke: checks the script end to end",
    )  # fmt: skip


def add_training_arguments(
    parser: Any, *, T: int, filters: str | None, filters_help: str = "conv_n_filters"
) -> None:
    """The separator's training schedule, shared by every arm of an experiment."""
    parser.add_argument("--T", type=int, default=T, help="frames per training example")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=3, help="training seed (spleeter:4stems')")
    parser.add_argument("--filters", default=filters, help=f"{filters_help}, comma-separated")


def parse_filters(text: str | None) -> list[int] | None:
    return [int(x) for x in text.split(",")] if text else None


def write_results(
    name: str, args: Any, info: dict[str, Any], rendered: Path, subsets: dict[str, list[str]],
    **fields: Any,
) -> dict[str, Any]:  # fmt: skip
    """``WORK/results/<name>.json``: the command, machine, data and ``fields``."""
    document = {
        "experiment": name,
        "command": command_line(),
        "machine": info,
        "data": dataset_summary(rendered),
        "subsets": subsets,
        **fields,
    }
    write_json(args.work / "results" / f"{name}.json", document)
    return document


def write_markdown(name: str, args: Any, markdown: str) -> None:
    """``WORK/results/<name>.md``, also printed."""
    (args.work / "results" / f"{name}.md").write_text(markdown)
    print(markdown)


def apply_smoke(args: Any) -> None:
    """``--smoke``: a few short songs in a separate work directory."""
    if args.smoke:
        args.work = Path(str(args.work) + "-smoke")
        args.songs, args.duration = 6, "10"
        args.test_fraction, args.validation_fraction = 0.17, 0.17


def prepare_data(args: Any) -> tuple[Path, Path, dict[str, list[str]], Path]:
    """Render (once), build the evaluation set, score the mixture baseline (once)."""
    args.work.mkdir(parents=True, exist_ok=True)
    rendered = render(
        args.work, args.songs, args.data_seed, args.duration,
        args.test_fraction, args.validation_fraction, args.jobs,
    )  # fmt: skip
    evalset, subsets = eval_set(args.work, rendered)
    baseline = mixture_baseline(args.work, evalset, args.jobs)
    return rendered, evalset, subsets, baseline


def command_line() -> str:
    """How this script was run (for the reports)."""
    script = Path(sys.argv[0]).resolve()
    if script.is_relative_to(REPO):
        script = script.relative_to(REPO)
    return " ".join(["python", str(script), *sys.argv[1:]])


def data_markdown(data: dict[str, Any], subsets: dict[str, list[str]]) -> str:
    args = data["arguments"]
    lines = [
        f"- Rendered with `python -m spleeter.rendering --songs {args.get('n_songs', '?')} "
        f"--seed {args.get('seed', '?')} --duration {args.get('duration', '?')}` "
        f"(4 stems), root `{data['root']}`",
    ]
    for split in ("train", "validation", "test"):
        s = data[split]
        lines.append(
            f"- {split}: {s['songs']} songs, {s['seconds'] / 60:.1f} min "
            f"({s['min_s']}-{s['max_s']} s each)"
        )
    lines.append(
        f"- evaluation: the {len(subsets['rendered'])} held-out rendered test songs, and the "
        f"real MUSDB18 excerpt `{EXCERPT_NAME}.stem.mp4` from the stempeg wheel (6.1 s)"
    )
    return "\n".join(lines)


def machine_markdown(info: dict[str, Any]) -> str:
    v = info["versions"]
    return (
        f"{info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB, no GPU; "
        f"Python {info['python']}, spleeter {v.get('spleeter')}, TensorFlow {v.get('tensorflow')}, "
        f"Keras {v.get('keras')}, numpy {v.get('numpy')}; load average at start "
        f"{', '.join(f'{x:.2f}' for x in info['load_average_at_start'])}"
    )
