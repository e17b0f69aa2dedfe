"""--shifts and --overlap: SDR gain against time cost, on the MUSDB excerpt or rendered songs.

Separates the MUSDB18 excerpt shipped in the stempeg wheel (6.1 s, 4 reference stems) with a
small trained upstream-format model (``tests/fixtures/upstream``: unet_4stems by default, the
only trained 4-stem weights available offline) at several settings, and prints a markdown
table: per-stem SDR (plain SDR over the whole excerpt, both channels),
the mean over stems, the gain over the plain run and the time ratio.

    PYTHONPATH=. python tools/experiments/shifts.py [--model unet_4stems] [--repeat 3]
        [--rendered DIR]   # the songs of DIR/test.csv (python -m spleeter.rendering), averaged
"""

import argparse
import os
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "upstream"
SETTINGS = [(1, 0.0), (2, 0.0), (4, 0.0), (8, 0.0), (1, 0.5), (1, 0.75), (4, 0.5)]
STREAMS = ("mixture", "drums", "bass", "other", "vocals")


def decode(path: Path) -> dict[str, np.ndarray]:
    import subprocess

    stems = {}
    for k, name in enumerate(STREAMS):
        command = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", f"0:a:{k}"]
        command += ["-f", "f32le", "-ar", "44100", "-ac", "2", "pipe:"]
        raw = subprocess.run(command, check=True, capture_output=True).stdout
        stems[name] = np.frombuffer(raw, "<f4").reshape(-1, 2).copy()
    return stems


def sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Plain SDR in dB over the whole excerpt (both channels)."""
    error = reference - estimate
    return float(10 * np.log10((np.sum(reference**2) + 1e-9) / (np.sum(error**2) + 1e-9)))


def musdb_excerpt() -> dict[str, np.ndarray]:
    import stempeg

    return decode(
        Path(stempeg.__file__).parent / "data" / "The Easton Ellises - Falcon 69.stem.mp4"
    )


def rendered_songs(root: Path) -> list[dict[str, np.ndarray]]:
    """The mixture and stems of each song listed in ``root/test.csv``."""
    import csv

    import soundfile

    songs = []
    with open(root / "test.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            paths = {"mixture": row["mix_path"]}
            paths |= {k[: -len("_path")]: v for k, v in row.items() if k.endswith("_path")}
            songs.append(
                {
                    name: soundfile.read(root / path, dtype="float32")[0]
                    for name, path in paths.items()
                }
            )
    return songs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="unet_4stems")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per setting (min kept)")
    parser.add_argument("--rendered", help="a rendered dataset: score its test.csv songs")
    args = parser.parse_args()
    os.environ["MODEL_PATH"] = str(FIXTURES / "models")
    from spleeter.separator import Separator

    songs = rendered_songs(Path(args.rendered)) if args.rendered else [musdb_excerpt()]
    config = str(FIXTURES / "configs" / f"{args.model}.json")
    rows, base = [], None
    for shifts, overlap in SETTINGS:
        separator = Separator(
            config, multiprocess=False, engine="tensorflow", shifts=shifts, overlap=overlap
        )
        separator.separate(songs[0]["mixture"][:44100])  # load and warm up
        per_song, seconds = [], 0.0
        for stems in songs:
            times = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                estimates = separator.separate(stems["mixture"])
                times.append(time.perf_counter() - start)
            seconds += min(times)
            per_song.append({n: sdr(stems[n], estimates[n]) for n in separator.instruments})
        scores = {n: float(np.mean([song[n] for song in per_song])) for n in per_song[0]}
        mean = float(np.mean(list(scores.values())))
        base = base or (mean, seconds)
        rows.append((shifts, overlap, scores, mean, mean - base[0], seconds / base[1]))
    names = list(rows[0][2])
    print(f"| shifts | overlap | {' | '.join(names)} | mean SDR | gain | time |")
    print("|" + " --- |" * (len(names) + 5))
    for shifts, overlap, scores, mean, gain, ratio in rows:
        cells = " | ".join(f"{scores[n]:.2f}" for n in names)
        print(f"| {shifts} | {overlap:g} | {cells} | {mean:.2f} | {gain:+.2f} | {ratio:.1f}x |")


if __name__ == "__main__":
    main()
