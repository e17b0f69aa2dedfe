"""Command line: ``python -m spleeter.rendering -o DIR --songs N --seed S --duration SECONDS``.

Shows a progress bar and a summary line on a terminal and nothing when piped; a problem the
user can fix is printed as one ``ERROR:spleeter:`` line with exit code 1.
"""

from __future__ import annotations

import argparse
import sys
import time

from .. import SpleeterError


def duration_arg(text: str) -> float | tuple[float, float]:
    """``"30"`` (every song 30 s) or ``"10-60"`` (each song drawn between 10 and 60 s)."""
    try:
        if "-" in text.strip("-"):
            low, high = (float(v) for v in text.split("-", 1))
            return (low, high)
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected SECONDS or MIN-MAX, got {text!r}") from None


def fraction_arg(text: str) -> float:
    """A fraction in [0, 1)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m spleeter.rendering",
        description="Render a deterministic multitrack dataset (MUSDB layout + upstream CSVs) "
        "from music21 corpus scores with FluidSynth.",
    )
    parser.add_argument("-o", "--output", required=True, help="output directory")
    parser.add_argument("--songs", type=int, default=10, help="number of songs (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--duration",
        type=duration_arg,
        default=30.0,
        help="song length in seconds, or MIN-MAX to draw it per song (default 30)",
    )
    parser.add_argument("--stems", type=int, choices=(4, 5), default=4, help="4 or 5 stems")
    parser.add_argument("--test-fraction", type=fraction_arg, default=0.2)
    parser.add_argument("--validation-fraction", type=fraction_arg, default=0.1)
    parser.add_argument("--soundfont", help="soundfont file (default: FluidR3 GM)")
    parser.add_argument("--jobs", type=int, default=1, help="songs rendered in parallel")
    parser.add_argument("--force", action="store_true", help="write into a non-empty directory")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command; returns the exit code."""
    args = build_parser().parse_args(argv)
    interactive = sys.stderr.isatty()
    splits = {"validation": args.validation_fraction, "test": args.test_fraction}
    started = time.perf_counter()
    try:
        from .dataset import render_dataset

        manifest = render_dataset(
            args.output,
            n_songs=args.songs,
            seed=args.seed,
            duration=args.duration,
            stems=args.stems,
            splits=splits,
            soundfont=args.soundfont,
            force=args.force,
            jobs=max(1, args.jobs),
            progress=interactive,
        )
    except SpleeterError as error:
        print(f"ERROR:spleeter:{error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ERROR:spleeter:interrupted", file=sys.stderr)
        return 130
    if interactive:
        counts = {}
        for song in manifest["songs"]:
            counts[song["split"]] = counts.get(song["split"], 0) + 1
        summary = ", ".join(f"{n} {split}" for split, n in sorted(counts.items()))
        elapsed = time.perf_counter() - started
        songs = len(manifest["songs"])
        message = f"Rendered {songs} songs ({summary}) to {args.output} in {elapsed:.1f} s"
        print(message, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
