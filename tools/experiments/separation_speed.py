#!/usr/bin/env python
"""Cold and warm separation speed of trained model folders on this machine's CPU cores.

    python tools/experiments/separation_speed.py MODEL_DIR [MODEL_DIR ...] --engines tensorflow

Cold: a fresh ``Separator`` (model load, engine start, first block) separating the real MUSDB
excerpt (6.1 s); warm: the same separator separating it again (the median of 3). Printed as a
Markdown table (seconds, and x real time).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--engines", default="tensorflow,onnx")
    args = parser.parse_args()
    import soundfile  # noqa: F401

    from spleeter.audio.adapter import AudioAdapter
    from spleeter.separator import Separator

    waveform, _ = AudioAdapter.default().load(str(common.excerpt_path()), sample_rate=44100)
    seconds = len(waveform) / 44100
    print("| model | engine | cold (s) | warm (s) | warm x real time |")
    print("|---|---|---:|---:|---:|")
    for model in args.models:
        for engine in args.engines.split(","):
            start = time.perf_counter()
            separator = Separator(str(model), multiprocess=False, engine=engine)
            separator.separate(waveform)
            cold = time.perf_counter() - start
            warm = []
            for _ in range(3):
                start = time.perf_counter()
                separator.separate(waveform)
                warm.append(time.perf_counter() - start)
            w = statistics.median(warm)
            print(f"| {model} | {engine} | {cold:.2f} | {w:.2f} | {seconds / w:.1f} |", flush=True)


if __name__ == "__main__":
    main()
