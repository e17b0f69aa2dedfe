"""Files per minute of ``spleeter separate --workers N`` against the sequential run.

Makes a catalogue of copies of the 6-s MUSDB excerpt (stempeg's wheel) and a small random
4-stem U-Net (tests/modelkit.py), then times each run as a user would (a fresh process, the
cluster's start-up included) and reads the per-file worker seconds from the run manifest.

    PYTHONPATH=. python tools/bench/scaleout.py --files 8 --workers 1 2
"""

import argparse
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))


def make_inputs(directory: Path, files: int) -> str:
    import soundfile
    import stempeg
    from conftest import decode_stream
    from modelkit import tiny_config, write_config, write_model

    from spleeter.utils.configuration import load_configuration

    config = tiny_config(load_configuration("spleeter:4stems"), directory / "model")
    write_model(config, seed=4)
    excerpt = Path(stempeg.__file__).parent / "data" / "The Easton Ellises - Falcon 69.stem.mp4"
    mixture = decode_stream(excerpt, 0)
    (directory / "music").mkdir()
    for k in range(files):
        soundfile.write(directory / "music" / f"song{k:03d}.wav", mixture, 44100, "PCM_16")
    return write_config(config, directory / "tiny4.json")


def timed_run(config: str, music: Path, output: Path, workers: int | None) -> dict:
    command = [sys.executable, "-m", "spleeter", "separate", "-p", config, "-o", str(output)]
    command += ["--workers", str(workers)] if workers else []
    start = time.perf_counter()
    subprocess.run([*command, str(music)], check=True, capture_output=True)
    wall = time.perf_counter() - start
    files = len(list(music.iterdir()))
    result = {"workers": workers or 0, "files": files, "wall_s": round(wall, 2)}
    result["files_per_min"] = round(60 * files / wall, 1)
    manifest = output / ".spleeter-manifest.sqlite"
    if manifest.exists():
        with sqlite3.connect(manifest) as db:
            seconds = [row[0] for row in db.execute("SELECT seconds FROM files")]
        busy = sum(seconds) / workers  # per worker: separating; the rest is overhead
        result["worker_s_per_file"] = round(sum(seconds) / files, 3)
        result["overhead_s"] = round(wall - busy, 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    arguments = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        config = make_inputs(directory, arguments.files)
        results = [timed_run(config, directory / "music", directory / "out-seq", None)]
        for workers in arguments.workers:
            output = directory / f"out-{workers}"
            results.append(timed_run(config, directory / "music", output, workers))
            shutil.rmtree(output)
    machine = {"cpus": os.cpu_count(), "processor": platform.processor(),
               "load_average_after": os.getloadavg()}  # fmt: skip
    print(json.dumps({"machine": machine, "runs": results}, indent=2))


if __name__ == "__main__":
    main()
