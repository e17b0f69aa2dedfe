#!/usr/bin/env python3
"""Speed and memory benchmark: this project against upstream Spleeter 2.4.2, same machine.

Run it with this project's interpreter; upstream runs in subprocesses of its own interpreter
(``--upstream-python`` or ``$UPSTREAM_PYTHON``, default ``/work/upstream-venv/bin/python``)::

    python3 tools/bench/bench.py                       # everything (about 40 min on 2 cores)
    python3 tools/bench/bench.py --quick               # fewer repeats, no 30/60-minute inputs
    python3 tools/bench/bench.py --stages cold,report  # rerun some stages, keep the others

Stages (``--stages``, always executed in this order; results accumulate in
``WORK/results.json``, so a rerun of some stages keeps the numbers of the others):

``setup``    full-size 4-stem U-Net (default ``spleeter:4stems`` architecture) trained for a few
             steps by upstream's own ``spleeter train`` on the MUSDB excerpt; one config JSON
             used by both projects; ``spleeter export`` (ONNX) timed once. Reused when present.
``inputs``   a 60 s stereo 44.1 kHz WAV (the excerpt's mixture looped), and 1/10/30/60 min ones.
``cold``     the whole CLI command on the 60 s input, ``--repeats`` alternating runs each.
``warm``     a driver per project: build a Separator, time model load, one warm-up call, then
             ``--calls`` timed ``separate(waveform)`` calls (and calls on 1 s of audio).
``compare``  upstream's and our output WAVs (16-bit LSB) and float outputs (max abs diff).
``memory``   peak memory of the CLI on long inputs (ours: tensorflow and onnx; upstream with
             ``-d`` set to the input's length, skipped where it extrapolates past 16 GB).
``profile``  where our time goes: per-stage timers around our CLI (in process), import times,
             cProfile of the warm path.
``report``   the tables: printed, and written to ``WORK/results.md`` and ``WORK/results.json``.

Timings on a shared machine are noisy: compare ratios taken in the same run (runs alternate
between projects), and look at the load averages recorded with them.
"""

import argparse
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from spleeter.evaluation import EVALUATION_INSTRUMENTS
from spleeter.evaluation.musdb_io import STEM_STREAMS

SAMPLE_RATE = 44100
REPO = Path(__file__).resolve().parents[2]
DEFAULT_WORK = Path("/tmp/spleeter-bench")
DEFAULT_UPSTREAM_PYTHON = "/work/upstream-venv/bin/python"
DEFAULT_EXCERPT = Path(
    "/root/.pyenv/versions/3.11.7/lib/python3.11/site-packages/stempeg/data/"
    "The Easton Ellises - Falcon 69.stem.mp4"
)
INSTRUMENTS = list(EVALUATION_INSTRUMENTS)
STAGES = ("setup", "inputs", "cold", "warm", "compare", "memory", "profile", "report")
MEMORY_MINUTES = (1, 10, 30, 60)
UPSTREAM_MEMORY_LIMIT_GIB = 16.0
GIB = 1 << 30
MIB = 1 << 20
TIMELINE_STEP = 5.0
FFMPEG = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-nostdin"]

# Variants of the separation command that are compared: (key, project, engine).
VARIANTS = [("upstream", "upstream", None), ("ours-tf", "ours", "tensorflow")]
DEFAULT_VARIANT = ("ours-default", "ours", None)
"""Our plain command, no ``-e``: what a new user runs (ONNX Runtime, converted on first use)."""
BUILT = re.compile(r"Built the network of .* for OpenVINO in ([0-9.]+) s")
"""The log line of the default's conversion on a first run."""
FIRST_RUN = "ours-default-first"
"""The plain command with no conversion cached yet (the first run after install/download)."""


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def available_gib() -> float:
    """``MemAvailable`` now, in GiB."""
    with open("/proc/meminfo") as stream:
        for line in stream:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / (1 << 20)
    return float("inf")


def median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


def loadavg() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of every benchmarked process: no PYTHONPATH (so each interpreter
    imports its own ``spleeter``), quiet TensorFlow, no download attempt."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env.update(TF_CPP_MIN_LOG_LEVEL="3", GITHUB_HOST="http://127.0.0.1:9")
    env.update(extra)
    return env


def script_next_to(python: str, name: str) -> list[str]:
    """The console script ``name`` of the environment of ``python`` (else ``python -m``)."""
    candidate = Path(python).parent / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return [str(candidate)]
    return [python, "-m", name]


def ffmpeg_decode(path: Path, stream: int = 0) -> np.ndarray:
    """One audio stream of ``path`` as float32 ``(n, 2)`` at 44.1 kHz."""
    command = [*FFMPEG, "-i", str(path), "-map", f"0:a:{stream}", "-f", "f32le"]
    command += ["-ar", str(SAMPLE_RATE), "-ac", "2", "pipe:"]
    raw = subprocess.run(command, check=True, capture_output=True).stdout
    return np.frombuffer(raw, dtype="<f4").reshape(-1, 2).copy()


def ffmpeg_write(path: Path, data: np.ndarray, codec: str) -> None:
    """Write float32 ``data`` with ``codec`` (``pcm_f32le`` or ``pcm_s16le``)."""
    command = [*FFMPEG, "-f", "f32le", "-ar", str(SAMPLE_RATE), "-ac", str(data.shape[1])]
    command += ["-i", "pipe:", "-c:a", codec, "-fflags", "+bitexact", str(path)]
    subprocess.run(command, input=np.ascontiguousarray(data, np.float32).tobytes(), check=True)


def read_pcm16(path: Path) -> np.ndarray:
    """A 16-bit PCM WAV file as int16 ``(n, channels)``."""
    with wave.open(str(path), "rb") as stream:
        if stream.getsampwidth() != 2:
            raise ValueError(f"{path}: {8 * stream.getsampwidth()}-bit, expected 16-bit PCM")
        frames = stream.readframes(stream.getnframes())
        return np.frombuffer(frames, "<i2").reshape(-1, stream.getnchannels())


def version_of(python: str, *packages: str) -> dict[str, str]:
    """Installed versions of ``packages`` in the environment of ``python`` (no imports)."""
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for p in sys.argv[1:]:\n"
        "    try: out[p] = m.version(p)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))"
    )
    done = subprocess.run(  # not from the repository: '' on sys.path would find its egg-info
        [python, "-c", code, *packages], capture_output=True, text=True, env=clean_env(), cwd="/"
    )
    return json.loads(done.stdout) if done.returncode == 0 else {}


# --------------------------------------------------------------------------------------------
# Running a command and measuring it
# --------------------------------------------------------------------------------------------


@dataclass
class Measured:
    """One process tree's run: wall time and peak memory."""

    wall_s: float
    max_rss_mib: float
    """Kernel ``ru_maxrss`` of the command: the largest resident set of any one process of
    the tree (what ``/usr/bin/time -v`` prints as "Maximum resident set size")."""
    peak_tree_pss_mib: float | None
    """Largest sum of the tree's proportional set sizes, sampled (None when not sampled)."""
    peak_tree_rss_mib: float | None
    """Largest sum of the tree's resident set sizes, sampled (counts shared pages twice)."""
    returncode: int
    load_before: list[float]
    cpu_s: float = 0.0
    """User + system CPU time of the command and its reaped descendants: less sensitive to
    other load than wall time (though spinning thread pools inflate it under contention)."""
    timeline: list[tuple[float, float]] | None = None
    """(seconds, tree PSS MiB) every ``TIMELINE_STEP`` seconds of the run, when sampled."""


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stream:
                stat = stream.read()
        except OSError:
            continue
        # the command name may contain spaces and parentheses: split after the last ')'
        fields = stat[stat.rfind(b")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def tree_memory(root: int) -> tuple[int, int]:
    """(sum of Pss, sum of Rss) in bytes over ``root`` and all its descendants."""
    children = _children_map()
    pending, pss, rss = [root], 0, 0
    while pending:
        pid = pending.pop()
        pending.extend(children.get(pid, []))
        try:
            with open(f"/proc/{pid}/smaps_rollup", "rb") as stream:
                for line in stream:
                    if line.startswith(b"Pss:"):
                        pss += int(line.split()[1]) * 1024
                    elif line.startswith(b"Rss:"):
                        rss += int(line.split()[1]) * 1024
        except OSError:
            continue
    return pss, rss


def run_measured(
    command: list[str],
    log_path: Path,
    env: dict[str, str],
    cwd: Path,
    sample_every: float | None = None,
    check: bool = True,
) -> Measured:
    """Run ``command`` (output to ``log_path``); wall time, ``ru_maxrss`` and, with
    ``sample_every``, the tree's peak memory sampled from ``/proc`` by a background thread."""
    load_before = loadavg()
    peaks = [0, 0]
    timeline: list[tuple[float, float]] = []
    stop = threading.Event()
    with open(log_path, "w") as output:
        output.write("$ " + " ".join(command) + "\n")
        output.flush()
        start = time.perf_counter()
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, env=env, cwd=cwd
        )
        sampler = None
        if sample_every:

            def sample() -> None:
                window = 0
                while not stop.is_set():
                    pss, rss = tree_memory(process.pid)
                    peaks[0], peaks[1] = max(peaks[0], pss), max(peaks[1], rss)
                    window = max(window, pss)
                    elapsed = time.perf_counter() - start
                    if elapsed >= TIMELINE_STEP * (len(timeline) + 1):
                        timeline.append((round(elapsed, 1), round(window / MIB)))
                        window = 0
                    stop.wait(sample_every)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        stop.set()
        if sampler is not None:
            sampler.join()
    result = Measured(
        wall_s=round(wall, 3),
        max_rss_mib=round(usage.ru_maxrss * 1024 / MIB, 1),
        peak_tree_pss_mib=round(peaks[0] / MIB, 1) if sample_every else None,
        peak_tree_rss_mib=round(peaks[1] / MIB, 1) if sample_every else None,
        returncode=process.returncode,
        load_before=load_before,
        timeline=timeline if sample_every else None,
        cpu_s=round(usage.ru_utime + usage.ru_stime, 3),
    )
    if check and result.returncode != 0:
        tail = log_path.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n{tail}")
    return result


# --------------------------------------------------------------------------------------------
# Drivers, written into the work directory and run by each project's interpreter
# --------------------------------------------------------------------------------------------

WARM_DRIVER = r'''
"""Warm separate calls with one Separator (run by either project's interpreter)."""
import argparse
import json
import time

import numpy as np

parser = argparse.ArgumentParser()
parser.add_argument("--project", choices=["ours", "upstream"], required=True)
parser.add_argument("--config", required=True)
parser.add_argument("--input", required=True)
parser.add_argument("--engine", default="tensorflow")
parser.add_argument("--calls", type=int, default=3)
parser.add_argument("--short-seconds", type=float, default=1.0)
parser.add_argument("--save")
parser.add_argument("--result", required=True)
parser.add_argument("--profile", help="cProfile the load and one call; write stats here")
args = parser.parse_args()
waveform = np.load(args.input)
result = {"input_seconds": waveform.shape[0] / 44100}

start = time.perf_counter()
from spleeter.separator import Separator  # noqa: E402
import spleeter  # noqa: E402

result["module"] = spleeter.__file__
result["import_s"] = time.perf_counter() - start

profiler = None
if args.profile:
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
start = time.perf_counter()
if args.project == "ours":
    separator = Separator(args.config, multiprocess=False, engine=args.engine)
    separator.load()
else:  # upstream has no load step: its graph is built and restored on every call
    separator = Separator(args.config, multiprocess=False)
result["load_s"] = time.perf_counter() - start

start = time.perf_counter()
sources = separator.separate(waveform)
result["first_call_s"] = time.perf_counter() - start
if profiler is not None:
    profiler.disable()
    import io
    import pstats

    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("cumulative").print_stats(45)
    stats.sort_stats("tottime").print_stats(25)
    with open(args.profile, "w") as stream:
        stream.write(text.getvalue())

calls, cpu = [], []
for _ in range(args.calls):
    start, start_cpu = time.perf_counter(), time.process_time()
    sources = separator.separate(waveform)
    calls.append(time.perf_counter() - start)
    cpu.append(time.process_time() - start_cpu)
result["calls_s"] = calls
result["calls_cpu_s"] = cpu
short = np.ascontiguousarray(waveform[: int(args.short_seconds * 44100)])
short_calls = []
for _ in range(2):
    start = time.perf_counter()
    separator.separate(short)
    short_calls.append(time.perf_counter() - start)
result["short_calls_s"] = short_calls
names = sorted(sources)
result["instruments"] = names
if args.save:
    np.save(args.save, np.stack([np.asarray(sources[name], np.float32) for name in names]))
with open(args.result, "w") as stream:
    json.dump(result, stream, indent=1)
'''

PROFILE_DRIVER = r'''
"""Our CLI, in process, with timers around each stage of the separation."""
import time

T0 = time.perf_counter()
import functools  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from collections import defaultdict  # noqa: E402

totals = defaultdict(float)
counts = defaultdict(int)
rss_after = {}
engine_calls = []


def rss_mib():
    with open("/proc/self/statm") as stream:
        return int(stream.read().split()[1]) * 4096 / (1 << 20)


def timed(owner, attribute, label, record=None):
    original = getattr(owner, attribute)

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            elapsed = time.perf_counter() - start
            totals[label] += elapsed
            counts[label] += 1
            rss_after[label] = max(rss_after.get(label, 0), rss_mib())
            if record is not None:
                record.append(elapsed)

    setattr(owner, attribute, wrapper)


result_path, argv = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
import spleeter.__main__ as cli  # noqa: E402

totals["import spleeter CLI (typer, numpy)"] = time.perf_counter() - start
rss_after["import spleeter CLI (typer, numpy)"] = rss_mib()
start = time.perf_counter()
import librosa  # noqa: E402, F401

import spleeter.audio.ffmpeg as ffmpeg  # noqa: E402
import spleeter.engines as engines  # noqa: E402
import spleeter.engines.onnx_export as onnx_export  # noqa: E402
import spleeter.engines.onnxruntime as ort_engine  # noqa: E402
import spleeter.engines.openvino as ov_engine  # noqa: E402
import spleeter.engines.openvino_network as ov_network  # noqa: E402
import spleeter.engines.tensorflow as tf_engine  # noqa: E402
import spleeter.separation.mask as mask_family  # noqa: E402
import spleeter.separation.pipeline as pipeline  # noqa: E402
import spleeter.separator as separator  # noqa: E402

totals["import audio stack (librosa, scipy)"] = time.perf_counter() - start
rss_after["import audio stack (librosa, scipy)"] = rss_mib()
# The engine modules import TensorFlow / ONNX Runtime lazily, inside these calls.
timed(tf_engine, "import_tensorflow", "import tensorflow+keras")
timed(ort_engine, "import_onnxruntime", "import onnxruntime")
timed(tf_engine, "build_model", "build Keras model")
timed(tf_engine, "load_checkpoint", "restore checkpoint")
timed(onnx_export, "onnx_model_for", "find ONNX export (fingerprint)")
timed(ov_network, "cached_network", "find or build the OpenVINO network")
timed(ort_engine.OnnxRuntimeEngine, "__init__", "ONNX Runtime session (incl. import)")
timed(ov_engine.OpenVinoEngine, "__init__", "OpenVINO compile (incl. import)")
timed(separator, "create_engine", "engine construction (total)")
timed(tf_engine.TensorFlowEngine, "__call__", "network", engine_calls)
timed(ort_engine.OnnxRuntimeEngine, "__call__", "network", engine_calls)
timed(ov_engine.OpenVinoEngine, "__call__", "network", engine_calls)
timed(pipeline, "frames_stft", "STFT")
timed(mask_family, "magnitude_blocks", "magnitudes")
timed(mask_family, "ratio_masks", "ratio masks")
timed(mask_family, "apply_mask", "apply masks")
timed(pipeline, "overlap_add", "iSTFT")
timed(ffmpeg.FFMPEGReader, "read", "decode (reading ffmpeg pipe)")
timed(ffmpeg.FFMPEGReader, "__init__", "decode (ffprobe + start ffmpeg)")
timed(ffmpeg.FFMPEGWriter, "__init__", "encode (start ffmpeg)")
timed(ffmpeg.FFMPEGWriter, "write", "encode (writing ffmpeg pipes)")
timed(ffmpeg.FFMPEGWriter, "finish", "encode (finish, wait for ffmpeg)")
from spleeter.utils.allocator import keep_freed_memory  # noqa: E402

keep_freed_memory()  # as the spleeter command's entry point does
start = time.perf_counter()
try:
    cli.spleeter(argv, standalone_mode=False)
finally:
    totals["CLI command (total)"] = time.perf_counter() - start
    totals["process (total, from interpreter start of this script)"] = time.perf_counter() - T0
    import resource

    data = {"totals": totals, "counts": counts, "engine_calls": engine_calls}
    data["rss_after_mib"] = rss_after
    data["ru_maxrss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with open(result_path, "w") as stream:
        json.dump(data, stream, indent=1)
'''


def computed_blocks(config: dict, seconds: int) -> float:
    """The 512-frame blocks the network computes for ``seconds`` of audio: the whole ones,
    and the last one as far as the registry's ``tail_frames`` cuts it."""
    from spleeter.audio.spectrogram import frame_count
    from spleeter.model import architecture

    T = config["T"]
    frames = frame_count(seconds * SAMPLE_RATE, config["frame_length"], config["frame_step"])
    blocks = math.ceil(frames / T)
    real = frames - (blocks - 1) * T
    cut = architecture(config).tail_frames
    return blocks - 1 + (cut(config, real) if cut else T) / T


# --------------------------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work: Path = args.work.resolve()
        self.work.mkdir(parents=True, exist_ok=True)
        self.python = sys.executable
        self.upstream_python = args.upstream_python
        self.quick: bool = args.quick
        self.repeats: int = args.repeats or (1 if self.quick else 3)
        self.calls: int = args.calls or (2 if self.quick else 3)
        self.minutes: list[int] = args.minutes or [
            m for m in MEMORY_MINUTES if not (self.quick and m > 10)
        ]
        self.config = self.work / "4stems-bench.json"
        self.model_dir = self.work / "model" / "4stems-bench"
        self.data = self.work / "data"
        self.inputs = self.work / "inputs"
        self.runs = self.work / "runs"
        self.logs = self.work / "logs"
        for directory in (self.inputs, self.runs, self.logs):
            directory.mkdir(exist_ok=True)
        self.results_path = self.work / "results.json"
        # Our runs cache their conversions (ONNX, OpenVINO's network and compiled blobs) under
        # here, so that the first-run measurement can forget them all.
        self.cache_home = self.work / "xdg-cache"
        os.environ["XDG_CACHE_HOME"] = str(self.cache_home)
        self.results: dict[str, Any] = {}
        if self.results_path.is_file():
            self.results = json.loads(self.results_path.read_text())
        self.variants = [*VARIANTS, DEFAULT_VARIANT]

    # ---------------------------------------------------------------- bookkeeping

    def save(self) -> None:
        self.results_path.write_text(json.dumps(self.results, indent=1) + "\n")

    def command(self, project: str, *arguments: str) -> list[str]:
        python = self.python if project == "ours" else self.upstream_python
        return [*script_next_to(python, "spleeter"), *arguments]

    def input_path(self, seconds: int) -> Path:
        return self.inputs / f"in{seconds}s.wav"

    # ---------------------------------------------------------------- stage: setup

    def setup(self) -> None:
        if not (self.model_dir / "checkpoint").is_file() or self.args.retrain:
            self._make_dataset()
            self._write_config()
            self._train()
        else:
            self._write_config()
            log(f"reusing the checkpoint in {self.model_dir}")
        onnx = self.model_dir / "model.onnx"
        if onnx.is_file() and not self.args.reexport and "export" in self.results:
            log(f"reusing {onnx} (exported in {self.results['export']['wall_s']:.1f} s)")
            return
        onnx.unlink(missing_ok=True)
        log("exporting to ONNX with `spleeter export` (one-off)")
        measured = run_measured(
            self.command("ours", "export", "-p", str(self.config)),
            self.logs / "export.log",
            clean_env(),
            self.work,
            sample_every=0.5,
        )
        self.results["export"] = {
            **asdict(measured),
            "onnx_mib": round(onnx.stat().st_size / MIB, 1),
        }
        log(f"export: {measured.wall_s:.1f} s, peak RSS {measured.max_rss_mib:.0f} MiB")
        self.save()

    def _make_dataset(self) -> None:
        """The excerpt's stems, looped to 30 s (a T=512 training chunk needs ~12 s), as
        float WAVs, and upstream's CSV."""
        song = self.data / "falcon"
        song.mkdir(parents=True, exist_ok=True)
        stems = {name: ffmpeg_decode(self.args.excerpt, k) for name, k in STEM_STREAMS.items()}
        n = min(len(x) for x in stems.values())
        loops = 5
        for name, x in stems.items():
            ffmpeg_write(song / f"{name}.wav", np.tile(x[:n], (loops, 1)), "pcm_f32le")
        duration = loops * n / SAMPLE_RATE
        header = ["mix_path", *(f"{name}_path" for name in INSTRUMENTS), "duration"]
        row = ["falcon/mixture.wav", *(f"falcon/{name}.wav" for name in INSTRUMENTS)]
        row.append(f"{duration:.6f}")
        (self.data / "train.csv").write_text(",".join(header) + "\n" + ",".join(row) + "\n")
        log(f"dataset: {duration:.1f} s of the excerpt's stems in {song}")

    def _write_config(self) -> None:
        """``spleeter:4stems`` (filters 16..512, ELU/ELU, T=512, F=1024) with an absolute
        model directory and a tiny training set; a few training steps."""
        steps = self.args.train_steps
        config = {
            "train_csv": str(self.data / "train.csv"),
            "validation_csv": str(self.data / "train.csv"),
            "model_dir": str(self.model_dir),
            "mix_name": "mix",
            "instrument_list": INSTRUMENTS,
            "sample_rate": SAMPLE_RATE,
            "frame_length": 4096,
            "frame_step": 1024,
            "T": 512,
            "F": 1024,
            "n_channels": 2,
            "separation_exponent": 2,
            "mask_extension": "zeros",
            "learning_rate": 0.0001,
            "batch_size": 2,
            "training_cache": str(self.work / "cache" / "training"),
            "validation_cache": None,
            "train_max_steps": steps,
            "throttle_secs": 3600,
            "random_seed": 3,
            "save_checkpoints_steps": steps,
            "save_summary_steps": steps,
            "chunk_duration": 20.0,
            "n_chunks_per_song": 2,
            "model": {
                "type": "unet.unet",
                "params": {"conv_activation": "ELU", "deconv_activation": "ELU"},
            },
        }
        self.config.write_text(json.dumps(config, indent=2) + "\n")

    def _train(self) -> None:
        shutil.rmtree(self.model_dir, ignore_errors=True)
        shutil.rmtree(self.work / "cache", ignore_errors=True)
        self.model_dir.parent.mkdir(parents=True, exist_ok=True)
        command = self.command(
            "upstream", "train", "-p", str(self.config), "-d", str(self.data), "--verbose"
        )
        log(f"training with upstream: {' '.join(command)}")
        measured = run_measured(command, self.logs / "train.log", clean_env(), self.work)
        self.results["train"] = {"wall_s": measured.wall_s, "steps": self.args.train_steps}
        self.results.pop("export", None)
        log(f"trained {self.args.train_steps} steps in {measured.wall_s:.0f} s")
        self.save()

    # ---------------------------------------------------------------- stage: inputs

    def make_inputs(self) -> None:
        seconds = [60] + [60 * m for m in self.minutes if m > 1]
        base = self.input_path(60)
        if not base.is_file():
            mixture = ffmpeg_decode(self.args.excerpt, STEM_STREAMS["mixture"])
            loops = -(-60 * SAMPLE_RATE // len(mixture))
            ffmpeg_write(base, np.tile(mixture, (loops, 1))[: 60 * SAMPLE_RATE], "pcm_s16le")
        np.save(self.inputs / "in60s.npy", read_pcm16(base).astype(np.float32) / 32768.0)
        for length in seconds[1:]:
            path = self.input_path(length)
            if path.is_file():
                continue
            log(f"writing {path.name}")
            command = [*FFMPEG, "-stream_loop", "-1", "-i", str(base), "-t", str(length)]
            subprocess.run([*command, "-c:a", "pcm_s16le", str(path)], check=True)
        log(f"inputs: {', '.join(p.name for p in sorted(self.inputs.glob('*.wav')))}")

    # ---------------------------------------------------------------- stage: cold

    def separate_command(
        self, key: str, output: Path, audio: Path, whole: int | None = None
    ) -> list[str]:
        """The CLI command of variant ``key``; ``whole``: the input's length in seconds, passed
        to upstream as ``-d`` (it crops at 600 s otherwise), else upstream's defaults."""
        project, engine = {k: (p, e) for k, p, e in self.variants}[key]
        arguments = ["separate", "-p", str(self.config), "-o", str(output)]
        if project == "ours" and engine:
            arguments += ["-e", str(engine)]
        elif whole is not None:
            arguments += ["-d", str(whole)]
        return self.command(project, *arguments, str(audio))

    def forget_conversion(self) -> None:
        """Remove every cached conversion (the ONNX export next to the checkpoint, the user
        cache's ONNX and OpenVINO networks), as on the first run after a download."""
        for name in ("model.onnx", "model.onnx.json"):
            (self.model_dir / name).unlink(missing_ok=True)
        shutil.rmtree(self.cache_home / "spleeter", ignore_errors=True)

    def cold(self) -> None:
        keys = [key for key, _, _ in self.variants]
        runs: dict[str, list[dict]] = {key: [] for key in [*keys, FIRST_RUN]}
        for repeat in range(self.repeats):
            order = keys[repeat % len(keys) :] + keys[: repeat % len(keys)]
            # Our plain command runs twice in a row: first with nothing cached, then again.
            at = order.index(DEFAULT_VARIANT[0])
            order[at:at] = [FIRST_RUN]
            for key in order:
                output = self.runs / f"cold-{key}"
                shutil.rmtree(output, ignore_errors=True)
                if key == FIRST_RUN:
                    self.forget_conversion()
                variant = DEFAULT_VARIANT[0] if key == FIRST_RUN else key
                command = self.separate_command(variant, output, self.input_path(60))
                measured = run_measured(
                    command, self.logs / f"cold-{key}-{repeat}.log", clean_env(), self.work
                )
                record = asdict(measured)
                if key == FIRST_RUN:  # how long the default's own conversion took, as it said
                    said = BUILT.search((self.logs / f"cold-{key}-{repeat}.log").read_text())
                    record["conversion_s"] = float(said.group(1)) if said else None
                runs[key].append(record)
                log(f"cold {key} #{repeat}: {measured.wall_s:.2f} s (load {measured.load_before})")
        summary = {
            key: {
                "median_s": median(run["wall_s"] for run in values),
                "runs_s": [run["wall_s"] for run in values],
                "max_rss_mib": max(run["max_rss_mib"] for run in values),
                "cpu_median_s": median(run["cpu_s"] for run in values),
            }
            for key, values in runs.items()
        }
        built = [run.get("conversion_s") for run in runs[FIRST_RUN]]
        if built and all(value is not None for value in built):
            summary[FIRST_RUN]["conversion_median_s"] = median(built)
        self.results["cold"] = {"input_seconds": 60, "repeats": self.repeats, **summary}
        self.save()

    # ---------------------------------------------------------------- stage: warm

    def warm(self) -> None:
        driver = self.work / "warm_driver.py"
        driver.write_text(WARM_DRIVER)
        results = {}
        for key, project, engine in self.variants:
            python = self.python if project == "ours" else self.upstream_python
            result = self.work / f"warm-{key}.json"
            command = [python, str(driver), "--project", project, "--config", str(self.config)]
            command += ["--input", str(self.inputs / "in60s.npy"), "--calls", str(self.calls)]
            command += ["--save", str(self.runs / f"warm-{key}.npy"), "--result", str(result)]
            if project == "ours":
                command += ["--engine", engine or "auto"]
            measured = run_measured(command, self.logs / f"warm-{key}.log", clean_env(), self.work)
            data = json.loads(result.read_text())
            inside = Path(data["module"]).resolve().is_relative_to(REPO)
            if inside != (project == "ours"):
                raise RuntimeError(f"{key}: imported the wrong spleeter ({data['module']})")
            data["calls_median_s"] = median(data["calls_s"])
            data["short_call_median_s"] = median(data["short_calls_s"])
            data["calls_cpu_median_s"] = median(data["calls_cpu_s"])
            data["process_wall_s"] = measured.wall_s
            data["max_rss_mib"] = measured.max_rss_mib
            data["load_before"] = measured.load_before
            results[key] = data
            log(
                f"warm {key}: import {data['import_s']:.2f} s, load {data['load_s']:.2f} s, "
                f"first {data['first_call_s']:.2f} s, calls {data['calls_median_s']:.2f} s "
                f"(1 s input: {data['short_call_median_s']:.2f} s)"
            )
        self.results["warm"] = results
        self.save()

    # ---------------------------------------------------------------- stage: compare

    def compare(self) -> None:
        report: dict[str, Any] = {"wav_lsb": {}, "float": {}}
        reference = self.runs / "cold-upstream" / "in60s"
        for key, _, _ in self.variants[1:]:
            ours = self.runs / f"cold-{key}" / "in60s"
            per_stem = {}
            for name in INSTRUMENTS:
                a, b = read_pcm16(reference / f"{name}.wav"), read_pcm16(ours / f"{name}.wav")
                if a.shape != b.shape:
                    per_stem[name] = f"shape {a.shape} vs {b.shape}"
                    continue
                diff = np.abs(a.astype(np.int32) - b.astype(np.int32))
                per_stem[name] = {"max_lsb": int(diff.max()), "differing": int((diff > 0).sum())}
            report["wav_lsb"][key] = per_stem
        arrays = {}
        for key, _, _ in self.variants:
            path = self.runs / f"warm-{key}.npy"
            if path.is_file():
                arrays[key] = np.load(path)
        pairs = [("upstream", "ours-tf"), ("upstream", "ours-default"), ("ours-tf", "ours-default")]
        for a, b in pairs:
            if a in arrays and b in arrays and arrays[a].shape == arrays[b].shape:
                diff = np.abs(arrays[a].astype(np.float64) - arrays[b])
                report["float"][f"{a} vs {b}"] = {
                    "max_abs": float(diff.max()),
                    "per_stem_max_abs": dict(
                        zip(sorted(INSTRUMENTS), map(float, diff.max(axis=(1, 2))), strict=True)
                    ),
                    "peak_abs_output": float(np.abs(arrays[a]).max()),
                }
        self.results["compare"] = report
        self.save()
        for key, stems in report["wav_lsb"].items():
            log(f"WAV upstream vs {key}: {stems}")
        for pair, values in report["float"].items():
            log(f"float {pair}: max abs diff {values['max_abs']:.2e}")

    # ---------------------------------------------------------------- stage: memory

    def memory(self) -> None:
        memory: dict[str, dict[str, Any]] = self.results.get("memory", {})
        interval = 0.25
        for minutes in self.minutes:
            seconds = 60 * minutes
            for key, project, _ in self.variants:
                if project == "upstream":
                    skip = self._upstream_skip(memory.get(key, {}), minutes)
                    if skip:
                        memory.setdefault(key, {})[str(minutes)] = {"skipped": skip}
                        log(f"memory {key} {minutes} min: skipped ({skip})")
                        continue
                output = self.runs / f"memory-{key}"
                shutil.rmtree(output, ignore_errors=True)
                command = self.separate_command(key, output, self.input_path(seconds), seconds)
                measured = run_measured(
                    command,
                    self.logs / f"memory-{key}-{minutes}min.log",
                    clean_env(),
                    self.work,
                    sample_every=interval,
                    check=False,
                )
                entry = asdict(measured)
                entry["realtime_factor"] = round(seconds / measured.wall_s, 2)
                if measured.returncode == 0:
                    written = output / self.input_path(seconds).stem / "vocals.wav"
                    with wave.open(str(written), "rb") as stream:
                        entry["output_seconds"] = round(stream.getnframes() / SAMPLE_RATE, 2)
                memory.setdefault(key, {})[str(minutes)] = entry
                shutil.rmtree(output, ignore_errors=True)
                log(
                    f"memory {key} {minutes} min: {measured.wall_s:.1f} s, ru_maxrss "
                    f"{measured.max_rss_mib:.0f} MiB, tree PSS {measured.peak_tree_pss_mib:.0f} "
                    f"MiB (rc {measured.returncode})"
                )
                self.results["memory"] = memory
                self.save()

    def _upstream_skip(self, done: dict[str, Any], minutes: int) -> str | None:
        """Why upstream is not run at ``minutes`` (None: run it)."""
        if minutes == 1:
            return None
        if self.quick:
            return "--quick (upstream at 1 min only)"
        if minutes <= 10:
            return None
        points = [
            (int(m), entry["max_rss_mib"])
            for m, entry in done.items()
            if "max_rss_mib" in entry and entry.get("returncode") == 0 and int(m) <= 10
        ]
        if len(points) < 2:
            return "no 1/10 min points to extrapolate from"
        (m0, r0), (m1, r1) = sorted(points)[:2]
        slope = (r1 - r0) / (m1 - m0)
        predicted = r1 + slope * (minutes - m1)
        limit = min(UPSTREAM_MEMORY_LIMIT_GIB, 0.8 * available_gib())
        if predicted / 1024 > limit:
            return (
                f"extrapolated {predicted / 1024:.1f} GiB > {limit:.0f} GiB "
                f"({slope:.0f} MiB per minute of audio)"
            )
        return None

    # ---------------------------------------------------------------- stage: profile

    def profile(self) -> None:
        profile: dict[str, Any] = {}
        driver = self.work / "profile_driver.py"
        driver.write_text(PROFILE_DRIVER)
        for key, _, engine in self.variants[1:]:
            output = self.runs / f"profile-{key}"
            shutil.rmtree(output, ignore_errors=True)
            result = self.work / f"profile-{key}.json"
            command = [self.python, str(driver), str(result), "separate", "-p", str(self.config)]
            command += [
                "-o",
                str(output),
                *(["-e", engine] if engine else []),
                str(self.input_path(60)),
            ]
            measured = run_measured(
                command, self.logs / f"profile-{key}.log", clean_env(), self.work
            )
            data = json.loads(result.read_text())
            data["wall_s"] = measured.wall_s
            profile[key] = data
            log(f"profile {key}: {measured.wall_s:.2f} s")
        # import times of the CLI and of the engines' runtimes, from `python -X importtime`
        imports = {}
        statements = {
            "spleeter CLI (--help path)": "import spleeter.__main__",
            "tensorflow + keras": "import keras, tensorflow",
            "onnxruntime": "import onnxruntime",
            "librosa": "import librosa",
        }
        for label, statement in statements.items():
            done = subprocess.run(
                [self.python, "-X", "importtime", "-c", statement],
                capture_output=True,
                text=True,
                env=clean_env(),
                cwd=self.work,
            )
            imports[label] = round(_importtime_total(done.stderr), 3)
        upstream_import = subprocess.run(
            [self.upstream_python, "-X", "importtime", "-c", "import spleeter.separator"],
            capture_output=True,
            text=True,
            env=clean_env(),
            cwd=self.work,
        )
        imports["upstream: spleeter.separator (imports tensorflow)"] = round(
            _importtime_total(upstream_import.stderr), 3
        )
        profile["imports_s"] = imports
        log(f"import times: {imports}")
        # cProfile of our warm path (load + first call), tensorflow engine
        stats = self.work / "cprofile-ours-tf.txt"
        command = [self.python, str(self.work / "warm_driver.py"), "--project", "ours"]
        command += ["--config", str(self.config), "--input", str(self.inputs / "in60s.npy")]
        command += ["--calls", "1", "--profile", str(stats), "--engine", "tensorflow"]
        command += ["--result", str(self.work / "cprofile-ours-tf.json")]
        (self.work / "warm_driver.py").write_text(WARM_DRIVER)
        run_measured(command, self.logs / "cprofile.log", clean_env(), self.work)
        profile["cprofile"] = str(stats)
        self.results["profile"] = profile
        self.save()

    # ---------------------------------------------------------------- stage: report

    def arithmetic(self) -> None:
        config = json.loads(self.config.read_text())
        per_block = unet_flops_per_block(config)
        frames_per_second = SAMPLE_RATE / config["frame_step"]
        peak, assumption = peak_flops()
        achieved = {}
        for key, data in self.results.get("profile", {}).items():
            calls = data.get("engine_calls") if isinstance(data, dict) else None
            if calls:
                achieved[key] = per_block * computed_blocks(config, 60) / sum(calls) / 1e9
        self.results["arithmetic"] = {
            "gflop_per_block": per_block / 1e9,
            "gflop_per_audio_second": per_block * frames_per_second / config["T"] / 1e9,
            "peak_gflops": peak / 1e9,
            "peak_assumption": assumption,
            "achieved_gflops": achieved,
        }

    def report(self) -> None:
        if self.config.is_file():
            self.arithmetic()
        self.results["machine_end"] = {"loadavg": loadavg(), "time": time.strftime("%c")}
        self.results.setdefault("stage_runs", {})["report"] = {
            "finished": time.strftime("%c"),
            "code": git_state(),
            "loadavg": loadavg(),
        }
        self.save()
        text = render_markdown(self.results)
        (self.work / "results.md").write_text(text)
        print(text)
        log(f"written {self.work / 'results.md'} and {self.results_path}")

    # ---------------------------------------------------------------- all

    def machine(self) -> None:
        model = "unknown"
        with open("/proc/cpuinfo") as stream:
            for line in stream:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as stream:
            total_kib = int(stream.readline().split()[1])
        ffmpeg_version = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True)
        packages = ("spleeter", "tensorflow", "tensorflow-cpu", "keras", "numpy", "onnxruntime")
        self.results["machine"] = {
            "cores": os.cpu_count(),
            "cpu_model": model,
            "memory_gib": round(total_kib / (1 << 20), 1),
            "platform": platform.platform(),
            "loadavg_start": loadavg(),
            "time": time.strftime("%c"),
            "ffmpeg": ffmpeg_version.stdout.split("\n", 1)[0],
            "quick": self.quick,
        }
        self.results["versions"] = {
            "ours": {
                "python": platform.python_version(),
                **version_of(self.python, *packages),
                "git": git_state(),
            },
            "upstream": version_of(self.upstream_python, *packages)
            | {"python": _python_version(self.upstream_python)},
        }
        self.save()

    def run(self, stages: list[str]) -> None:
        self.machine()
        steps: dict[str, Callable[[], None]] = {
            "setup": self.setup,
            "inputs": self.make_inputs,
            "cold": self.cold,
            "warm": self.warm,
            "compare": self.compare,
            "memory": self.memory,
            "profile": self.profile,
            "report": self.report,
        }
        for stage in STAGES:
            if stage in stages:
                start = time.perf_counter()
                log(f"stage {stage} (load {loadavg()})")
                steps[stage]()
                self.results.setdefault("stage_seconds", {})[stage] = round(
                    time.perf_counter() - start, 1
                )
                self.results.setdefault("stage_runs", {})[stage] = {
                    "finished": time.strftime("%c"),
                    "code": git_state(),
                    "loadavg": loadavg(),
                }
                self.save()


def git_state() -> str:
    """This repository's commit, and whether ``spleeter/`` differs from it."""

    def git(*arguments: str) -> str:
        done = subprocess.run(["git", *arguments], capture_output=True, text=True, cwd=REPO)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "spleeter")
    return commit + (" + uncommitted changes in spleeter/" if dirty else "")


def _python_version(python: str) -> str:
    done = subprocess.run(
        [python, "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


def _importtime_total(stderr: str) -> float:
    """Seconds of the top-level imports in a ``-X importtime`` log (sum of their cumulative
    times; nested imports are indented by two more spaces per level)."""
    total = 0
    for line in stderr.splitlines():
        parts = line.split("|")
        if not line.startswith("import time:") or len(parts) != 3:
            continue
        cumulative, name = parts[1].strip(), parts[2]
        if cumulative.isdigit() and name.startswith(" ") and not name.startswith("  "):
            total += int(cumulative)
    return total / 1e6


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a and b else "-"


def _fmt(value: Any, digits: int = 2) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else "-"


ISSUE_11_GOALS = [
    # (label, goal, moonshot)
    ("default cold CLI, 60 s input, first run after install/download", 3.0, 5.0),
    ("the same, second run", 4.0, 6.0),
    ("10-minute input, cold CLI", 3.0, 5.0),
    ("warm `Separator.separate()`, 60 s", 4.0, 8.0),
]


def _issue_11_ratios(results: dict[str, Any]) -> list[float | None]:
    """Upstream time / our plain command's time for each row of ISSUE_11_GOALS."""
    cold, warm = results.get("cold", {}), results.get("warm", {})
    memory = results.get("memory", {})

    def ratio(upstream: float | None, ours: float | None) -> float | None:
        return upstream / ours if upstream and ours else None

    up_cold = cold.get("upstream", {}).get("median_s")
    up_long = memory.get("upstream", {}).get("10", {}).get("wall_s")
    return [
        ratio(up_cold, cold.get(FIRST_RUN, {}).get("median_s")),
        ratio(up_cold, cold.get("ours-default", {}).get("median_s")),
        ratio(up_long, memory.get("ours-default", {}).get("10", {}).get("wall_s")),
        ratio(
            warm.get("upstream", {}).get("calls_median_s"),
            warm.get("ours-default", {}).get("calls_median_s"),
        ),
    ]


def _goals(results: dict[str, Any]) -> list[str]:
    """Issue 11's table (the plain command against upstream: now, goal, moonshot), then issue
    4's checks (same output, bounded memory)."""
    lines = [
        "## Goals (issue 11: the plain `spleeter separate`, ratio = upstream / ours)",
        "",
        "| measure | now | goal | moonshot | verdict |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for (label, goal, moonshot), value in zip(
        ISSUE_11_GOALS, _issue_11_ratios(results), strict=True
    ):
        if value is None:
            lines.append(f"| {label} | not run | {goal:g}x | {moonshot:g}x | - |")
            continue
        verdict = "moonshot" if value >= moonshot else "met" if value >= goal else "NOT met"
        lines.append(f"| {label} | {value:.2f}x | {goal:g}x | {moonshot:g}x | {verdict} |")
    export = results.get("export")
    first = results.get("cold", {}).get(FIRST_RUN, {})
    if first.get("conversion_median_s") is not None:
        built, rss = first["conversion_median_s"], first["max_rss_mib"] / 1024
        met = built < 15 and rss < 1.5
        lines.append(
            f"| the default's conversion on its first run (OpenVINO network from the "
            f"checkpoint; peak RSS of that whole run) | {built:.1f} s / {rss:.2f} GiB | under 15 s"
            f" / 1.5 GiB | no conversion step | {'met' if met else 'NOT met'} |"
        )
    if export:
        met = export["wall_s"] < 15 and export["max_rss_mib"] < 1536
        lines.append(
            f"| one-off conversion of the full 4stems model (`spleeter export`) | "
            f"{export['wall_s']:.1f} s / {export['max_rss_mib'] / 1024:.2f} GiB | under 15 s / "
            f"1.5 GiB | no conversion step | {'met' if met else 'NOT met'} |"
        )
    lines.append("")
    lines += _arithmetic(results)
    lines += ["## Other checks (issue 4)", ""]
    compare = results.get("compare", {})
    for key, stems in compare.get("wav_lsb", {}).items():
        worst = max((v["max_lsb"] for v in stems.values() if isinstance(v, dict)), default=None)
        if worst is not None:
            verdict = "met" if worst <= 2 else "NOT met"
            lines.append(f"- same output, {key} (goal <= 2 LSB): {worst} LSB -> {verdict}")
    for pair, values in compare.get("float", {}).items():
        if pair.startswith("upstream"):
            verdict = "met" if values["max_abs"] <= 1e-4 else "NOT met"
            lines.append(
                f"- same output, {pair} float (goal <= 1e-4): {values['max_abs']:.1e} -> {verdict}"
            )
    for key in ("ours-tf", "ours-default"):
        entry = results.get("memory", {}).get(key, {}).get("60", {})
        if "max_rss_mib" in entry:
            peak = max(entry["max_rss_mib"], entry.get("peak_tree_pss_mib") or 0)
            verdict = "met" if peak < 2048 and entry["returncode"] == 0 else "NOT met"
            lines.append(
                f"- peak memory, {key}, 60-min input (goal < 2 GiB): {peak:.0f} MiB -> {verdict}"
            )
    lines.append("")
    return lines


def unet_flops_per_block(config: dict[str, Any]) -> float:
    """Floating-point operations (2 per multiply-add) of the U-Nets on one ``(T, F)`` block."""
    filters = list(config["model"]["params"].get("conv_n_filters", (16, 32, 64, 128, 256, 512)))
    height, width, channels = config["T"], config["F"], config["n_channels"]
    macs = 0.0
    skips = []
    for n_filters in filters:
        height, width = height // 2, width // 2
        macs += height * width * 25 * channels * n_filters
        skips.append(n_filters)
        channels = n_filters
    skips.pop()  # the deepest level has no skip connection
    for n_filters in [*reversed(filters[:-1]), 1]:
        macs += height * width * 25 * channels * n_filters  # each input pixel scatters 5x5
        height, width = height * 2, width * 2
        channels = n_filters + (skips.pop() if skips else 0)
    macs += height * width * 16 * channels * 2  # the 4x4 mask convolution
    return 2 * macs * len(config["instrument_list"])


def peak_flops() -> tuple[float, str]:
    """The cores' peak float32 FLOP/s from /proc/cpuinfo, with the assumption it makes."""
    mhz, vendor, flags = 0.0, "", set()
    with open("/proc/cpuinfo") as stream:
        for line in stream:
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "cpu MHz" and not mhz:
                mhz = float(value)
            elif key == "vendor_id":
                vendor = value.strip()
            elif key == "flags" and not flags:
                flags = set(value.split())
    if "avx512f" in flags and vendor == "GenuineIntel":
        per_cycle, why = 64, "2 AVX-512 FMA units (Intel server core)"
    elif "fma" in flags:
        per_cycle, why = 32, "2 FMA units of 256 bits (AVX-512 double-pumped on AMD Zen 4)"
    else:
        per_cycle, why = 8, "SSE only"
    cores = os.cpu_count() or 1
    text = f"{cores} cores x {mhz:.0f} MHz x {per_cycle} float32 FLOP/cycle ({why})"
    return cores * mhz * 1e6 * per_cycle, text


def _arithmetic(results: dict[str, Any]) -> list[str]:
    """How close the network comes to the machine's peak arithmetic (issue 11)."""
    arithmetic = results.get("arithmetic")
    if not arithmetic:
        return []
    lines = [
        f"Network arithmetic: {arithmetic['gflop_per_audio_second']:.1f} GFLOP per second of "
        f"44.1 kHz audio (4 U-Nets, {arithmetic['gflop_per_block']:.0f} GFLOP per 512-frame "
        f"block); peak of this machine {arithmetic['peak_gflops']:.0f} GFLOP/s "
        f"({arithmetic['peak_assumption']})."
    ]
    for key, value in arithmetic.get("achieved_gflops", {}).items():
        lines.append(
            f"- {key}: network {value:.0f} GFLOP/s = {100 * value / arithmetic['peak_gflops']:.0f} "
            "% of peak (network calls only, from the profile stage)"
        )
    lines.append("")
    return lines


def _sixths(timeline: list[list[float]] | None) -> str:
    """The peak of each sixth of a memory timeline: does memory grow or plateau?"""
    if not timeline:
        return "-"
    values = [point[1] for point in timeline]
    n = len(values)
    parts = [values[i * n // 6 : max((i + 1) * n // 6, i * n // 6 + 1)] for i in range(min(6, n))]
    return ", ".join(f"{max(part):.0f}" for part in parts if part)


def render_markdown(results: dict[str, Any]) -> str:
    lines: list[str] = ["# Spleeter benchmark: this fork vs upstream 2.4.2", ""]
    machine = results.get("machine", {})
    versions = results.get("versions", {})
    lines += [
        f"- machine: {machine.get('cores')} cores, {machine.get('cpu_model')}, "
        f"{machine.get('memory_gib')} GiB; {machine.get('platform')}",
        f"- load average at start {machine.get('loadavg_start')}, at end "
        f"{results.get('machine_end', {}).get('loadavg')} (shared machine: timings are noisy)",
        f"- ours: {json.dumps(versions.get('ours', {}))}",
        f"- upstream: {json.dumps(versions.get('upstream', {}))}",
        f"- {machine.get('ffmpeg')}; run {machine.get('time')}"
        + (" (--quick)" if machine.get("quick") else ""),
        "- model: spleeter:4stems architecture (U-Net, filters 16..512, ELU/ELU, T=512, F=1024), "
        f"trained {results.get('train', {}).get('steps', '?')} steps by upstream `spleeter train`",
    ]
    export = results.get("export")
    if export:
        lines.append(
            f"- one-off `spleeter export` (ONNX): {export['wall_s']:.1f} s, "
            f"peak RSS {export['max_rss_mib']:.0f} MiB, model.onnx {export['onnx_mib']} MiB"
        )
    lines.append("")
    lines += _goals(results)
    cold, warm = results.get("cold"), results.get("warm")
    if cold or warm:
        lines += [
            "## Speed, 60 s stereo input (medians; ratio = upstream / ours)",
            "",
            "| measure | upstream | ours -e tensorflow | ours, plain | ratio tf | ratio plain |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]

        def row(label: str, values: dict[str, float | None]) -> None:
            up, tf, onnx = values.get("upstream"), values.get("ours-tf"), values.get("ours-default")
            lines.append(
                f"| {label} | {_fmt(up)} | {_fmt(tf)} | {_fmt(onnx)} | {_ratio(up, tf)} | "
                f"{_ratio(up, onnx)} |"
            )

        if cold:
            row(
                f"cold CLI process, s (N={cold['repeats']})",
                {k: v["median_s"] for k, v in cold.items() if isinstance(v, dict)},
            )
        if cold:
            row(
                "cold CLI process, CPU s (user+sys, tree)",
                {k: v.get("cpu_median_s") for k, v in cold.items() if isinstance(v, dict)},
            )
        if warm:
            row("warm separate() call, s", {k: v["calls_median_s"] for k, v in warm.items()})
            row(
                "warm separate() call, CPU s (all threads)",
                {k: v.get("calls_cpu_median_s") for k, v in warm.items()},
            )
            row(
                "separate() of 1 s of audio, s",
                {k: v["short_call_median_s"] for k, v in warm.items()},
            )
            row("import spleeter.separator, s", {k: v["import_s"] for k, v in warm.items()})
            row("Separator() + model load, s", {k: v["load_s"] for k, v in warm.items()})
            row("first separate() call, s", {k: v["first_call_s"] for k, v in warm.items()})
        if cold:
            lines.append(
                "| cold runs, s | "
                + " | ".join(
                    ", ".join(f"{t:.2f}" for t in cold[k]["runs_s"]) if k in cold else "-"
                    for k in ("upstream", "ours-tf", "ours-default")
                )
                + " | | |"
            )
        lines += [
            "",
            "Upstream has no load step: its Estimator rebuilds the graph and restores the "
            "checkpoint inside every `separate()` call (see the 1 s row).",
            "",
        ]
    compare = results.get("compare")
    if compare:
        lines += ["## Same output (60 s input)", ""]
        for key, stems in compare["wav_lsb"].items():
            cells = ", ".join(
                f"{name} {v['max_lsb']} ({v['differing']} samples differ)"
                if isinstance(v, dict)
                else f"{name} {v}"
                for name, v in stems.items()
            )
            lines.append(f"- CLI WAV, upstream vs {key}: max |diff| in 16-bit LSB: {cells}")
        for pair, values in compare["float"].items():
            lines.append(
                f"- separate() float32, {pair}: max abs diff {values['max_abs']:.2e} "
                f"(peak |output| {values['peak_abs_output']:.2f})"
            )
        lines.append("")
    memory = results.get("memory")
    if memory:
        lines += [
            "## Peak memory and speed on long inputs (CLI, whole file)",
            "",
            "ru_maxrss = largest single process (as `/usr/bin/time -v`); tree PSS = sampled sum "
            "over the process tree (ffmpeg decoders/encoders, upstream's writer pool).",
            "",
            "| input | variant | wall s | CPU s | x real time | ru_maxrss MiB | tree PSS MiB "
            "| rc | PSS MiB over the run (max per sixth) |",
            "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        minutes = sorted({int(m) for entries in memory.values() for m in entries})
        for m in minutes:
            for key in ("upstream", "ours-tf", "ours-default"):
                entry = memory.get(key, {}).get(str(m))
                if entry is None:
                    continue
                if "skipped" in entry:
                    lines.append(f"| {m} min | {key} | skipped: {entry['skipped']} | | | | | | |")
                    continue
                lines.append(
                    f"| {m} min | {key} | {entry['wall_s']:.1f} | {_fmt(entry.get('cpu_s'), 1)} | "
                    f"{entry['realtime_factor']} | "
                    f"{entry['max_rss_mib']:.0f} | {_fmt(entry['peak_tree_pss_mib'], 0)} | "
                    f"{entry['returncode']} | {_sixths(entry.get('timeline'))} |"
                )
        lines.append("")
    profile = results.get("profile")
    if profile:
        lines += ["## Where our time goes (CLI on the 60 s input, in-process stage timers)", ""]
        keys = [k for k in ("ours-tf", "ours-default") if k in profile]
        labels: list[str] = []
        for key in keys:
            labels += [label for label in profile[key]["totals"] if label not in labels]
        lines += [
            "| stage | "
            + " | ".join(f"{k} s" for k in keys)
            + " | "
            + " | ".join(f"{k} RSS after, MiB" for k in keys)
            + " |",
            "| --- |" + " ---: |" * 2 * len(keys),
        ]
        for label in labels:
            cells = [_fmt(profile[k]["totals"].get(label), 3) for k in keys]
            cells += [_fmt(profile[k].get("rss_after_mib", {}).get(label), 0) for k in keys]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        calls = [", ".join(f"{t:.2f}" for t in profile[k]["engine_calls"]) for k in keys]
        cells = calls + ["-"] * len(keys)
        lines.append("| network calls (each) | " + " | ".join(cells) + " |")
        peaks = [_fmt(profile[k].get("ru_maxrss_mib"), 0) for k in keys]
        cells = ["-"] * len(keys) + peaks
        lines.append("| peak RSS of the process (ru_maxrss) | " + " | ".join(cells) + " |")
        lines += ["", "Import times (`python -X importtime`, cumulative, s): "]
        lines += [f"- {label}: {value:.2f}" for label, value in profile["imports_s"].items()]
        lines.append("")
    stages = results.get("stage_seconds")
    if stages:
        lines.append("Stage durations (s): " + ", ".join(f"{k} {v}" for k, v in stages.items()))
        lines.append("")
    runs = results.get("stage_runs")
    if runs:
        lines += ["Stages last run (finished, code, load average at the end):", ""]
        lines += [
            f"- {stage}: {run['finished']}, {run['code']}, {run['loadavg']}"
            for stage, run in runs.items()
        ]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="work dir (reused)")
    parser.add_argument(
        "--upstream-python",
        default=os.environ.get("UPSTREAM_PYTHON", DEFAULT_UPSTREAM_PYTHON),
        help="interpreter of an environment with upstream spleeter 2.4.2 ($UPSTREAM_PYTHON)",
    )
    parser.add_argument("--excerpt", type=Path, default=DEFAULT_EXCERPT, help="MUSDB .stem.mp4")
    parser.add_argument("--stages", default=",".join(STAGES), help="comma-separated stages")
    parser.add_argument("--quick", action="store_true", help="1 cold repeat, 2 calls, <=10 min")
    parser.add_argument("--repeats", type=int, help="cold runs per variant (default 3)")
    parser.add_argument("--calls", type=int, help="timed warm calls (default 3)")
    parser.add_argument(
        "--minutes",
        type=lambda text: [int(m) for m in text.split(",")],
        help="input lengths of the memory stage, in minutes (default 1,10,30,60)",
    )
    parser.add_argument("--train-steps", type=int, default=4, help="upstream training steps")
    parser.add_argument("--retrain", action="store_true", help="train even if a model exists")
    parser.add_argument("--reexport", action="store_true", help="redo the ONNX export")
    args = parser.parse_args()
    stages = [stage.strip() for stage in args.stages.split(",") if stage.strip()]
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        parser.error(f"unknown stages {unknown} (choose from {', '.join(STAGES)})")
    if not Path(args.upstream_python).is_file():
        parser.error(f"no upstream interpreter at {args.upstream_python} (--upstream-python)")
    Bench(args).run(stages)


if __name__ == "__main__":
    main()
