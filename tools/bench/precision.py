"""What each ``--precision`` costs and gives: warm speed on the benchmark's full-size model and
SDR change on the MUSDB excerpt (issue 11).

Speed: ``Separator.separate()`` of the benchmark's 60 s input (``bench.py``'s setup and inputs
stages make ``WORK/4stems-bench.json`` and ``WORK/inputs/in60s.wav``) at every precision this
machine runs, one warm-up call each, then ``--calls`` timed calls in rotating order, medians;
the ratio is float32's time over the precision's, taken in the same run. The largest absolute
difference of every output against float32's is reported too.

Quality: the upstream-trained 4-stem fixture model (tests/fixtures/upstream, filters 4..16: a
small model, so the SDR levels are low; what matters is the change) separates the whole MUSDB
excerpt at each precision; museval v4, median over windows, mean over the four stems, and
the change against float32.

    python3 tools/bench/precision.py [--work /tmp/spleeter-bench] [--calls 3]
"""

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bench import DEFAULT_EXCERPT, DEFAULT_WORK, INSTRUMENTS

from spleeter import SpleeterError
from spleeter.audio.adapter import AudioAdapter
from spleeter.engines import PRECISIONS
from spleeter.evaluation import MUSEVAL_PROTOCOL
from spleeter.evaluation.metrics import score_track
from spleeter.evaluation.musdb_io import STEM_LAYOUT, Track
from spleeter.separator import Separator
from spleeter.utils.configuration import load_configuration

FIXTURES = Path(__file__).parents[2] / "tests" / "fixtures" / "upstream"


def runnable(config: str) -> dict[str, Separator]:
    """A loaded separator per precision; those this machine cannot run are reported and left."""
    separators = {}
    for precision in PRECISIONS:
        separator = Separator(config, multiprocess=False, precision=precision)
        try:
            separator.load()
        except SpleeterError as error:
            print(f"{precision}: not run ({error})")
            continue
        separators[precision] = separator
    return separators


def speed(config: str, waveform: np.ndarray, calls: int) -> dict[str, dict]:
    separators = runnable(config)
    outputs = {name: separator.separate(waveform) for name, separator in separators.items()}
    times: dict[str, list[float]] = {name: [] for name in separators}
    names = list(separators)
    for call in range(calls):
        for name in names[call % len(names) :] + names[: call % len(names)]:
            start = time.perf_counter()
            separators[name].separate(waveform)
            times[name].append(time.perf_counter() - start)
    reference = statistics.median(times["float32"])
    return {
        name: {
            "engine": separators[name]._engine.name,
            "seconds": times[name],
            "median_s": statistics.median(times[name]),
            "speed-up": reference / statistics.median(times[name]),
            "max_abs_difference": max(
                float(np.abs(outputs[name][stem] - outputs["float32"][stem]).max())
                for stem in outputs["float32"]
            ),
        }
        for name in names
    }


def quality(excerpt: Path) -> dict[str, float]:
    track = Track(excerpt.name, excerpt, STEM_LAYOUT)
    references, rate = track.load_references(INSTRUMENTS)
    mixture = track.load_mixture(AudioAdapter.default(), rate)
    with tempfile.TemporaryDirectory() as directory:
        config = load_configuration(str(FIXTURES / "configs" / "unet_4stems.json"))
        # A copy of the fixture model: the conversions are written next to it.
        shutil.copytree(FIXTURES / "models" / "unet_4stems", Path(directory) / "model")
        path = Path(directory) / "config.json"
        path.write_text(json.dumps({**config, "model_dir": str(Path(directory) / "model")}))
        sdr = {}
        for name, separator in runnable(str(path)).items():
            estimates = separator.separate(mixture)
            scores = score_track(references, estimates, rate, MUSEVAL_PROTOCOL)
            sdr[name] = float(
                np.mean([np.nanmedian(scores.targets[stem]["SDR"]) for stem in references])
            )
    return sdr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK)
    parser.add_argument("--excerpt", type=Path, default=DEFAULT_EXCERPT)
    parser.add_argument("--calls", type=int, default=3)
    args = parser.parse_args()
    config = args.work / "4stems-bench.json"
    if not config.is_file():
        sys.exit(f"{config} missing: run bench.py --stages setup,inputs first")
    source = str(args.work / "inputs" / "in60s.wav")
    waveform, _ = AudioAdapter.default().load(source, sample_rate=44100)
    timing = speed(str(config), waveform, args.calls)
    sdr = quality(args.excerpt)
    results = {"speed": timing, "sdr": sdr}
    (args.work / "precision.json").write_text(json.dumps(results, indent=2))
    print("| precision | engine | warm 60 s, s | vs float32 | max abs diff | SDR, dB | change |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for name, row in timing.items():
        change = sdr.get(name, float("nan")) - sdr["float32"]
        print(
            f"| {name} | {row['engine']} | {row['median_s']:.2f} | {row['speed-up']:.2f}x | "
            f"{row['max_abs_difference']:.1e} | {sdr.get(name, float('nan')):.3f} | "
            f"{change:+.3f} |"
        )


if __name__ == "__main__":
    main()
