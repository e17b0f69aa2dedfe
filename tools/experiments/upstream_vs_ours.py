#!/usr/bin/env python
"""Issue 3 (b): the same tiny 4-stem configuration trained by upstream Spleeter 2.4.2's
``spleeter train`` (its own virtual environment) and by this project, same data, steps and
seed; both checkpoints scored by this project's ``spleeter evaluate``; steps per second side by
side.

    python tools/experiments/upstream_vs_ours.py                 # ~25 min on 2 cores
    python tools/experiments/upstream_vs_ours.py --smoke

Upstream runs through ``$UPSTREAM_PYTHON``'s environment (default
``/work/upstream-venv/bin/python``, with ``spleeter==2.4.2`` and TensorFlow 2.12). One
configuration (upstream's keys) serves both; the two files differ only in ``model_dir`` and in
the cache paths (upstream's ``training_cache`` is a ``tf.data`` cache file prefix, ours a
directory). Each side starts with an empty cache. Writes
``WORK/results/upstream_vs_ours.{json,md}``.

Expected source of difference: upstream never updates the batch-norm moving statistics and
runs its batch norms with the initial statistics (0, 1) and without dropout during training;
this project trains in Keras' training mode (batch statistics, moving averages updated,
dropout 0.5 in the decoder), as the released models were meant to be trained.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

NAME = "upstream_vs_ours"
ARMS = {"upstream": "upstream 2.4.2", "ours": "this project"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_common_arguments(parser)
    parser.add_argument("--steps", type=int, default=1000)
    common.add_training_arguments(parser, T=128, filters="4,8,16,32,64,128")
    parser.add_argument(
        "--rate-after-step",
        type=int,
        default=100,
        help="steps/s are measured from the first progress line at or after "
        "this step to the last one (excludes start-up and the first epochs, "
        "which fill the caches)",
    )
    args = parser.parse_args()  # fmt: skip
    common.apply_smoke(args)
    if args.smoke:
        args.steps, args.rate_after_step = 60, 20
    filters = common.parse_filters(args.filters)
    info = common.machine()
    rendered, evalset, subsets, baseline = common.prepare_data(args)

    configs, trainings, scores = (
        {},
        {},
        {"mixture as estimate": common.subset_medians(baseline, subsets)},
    )
    for arm in ARMS:  # upstream first, then ours, on the same idle machine
        run_dir = args.work / "runs" / NAME / arm
        config = common.make_config(
            rendered=rendered,
            model_dir=run_dir / "model",
            cache_dir=run_dir / "cache",
            model={"type": "unet.unet", "params": common.unet_params(filters)},
            T=args.T,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            seed=args.seed,
            save_checkpoints_steps=args.steps,
            max_steps=args.steps,
            throttle_secs=36000,
        )
        if not (run_dir / "train.json").is_file():
            shutil.rmtree(run_dir / "cache", ignore_errors=True)
        configs[arm] = config
        trainings[arm] = common.train(
            run_dir, config, rendered, steps=args.steps, tool=arm,
            rate_after_step=args.rate_after_step, verbose=True,
        )  # fmt: skip
    for arm in ARMS:
        run_dir = args.work / "runs" / NAME / arm
        summary = common.evaluate(run_dir, configs[arm], evalset, jobs=args.jobs)
        scores[f"{ARMS[arm]} `spleeter train`"] = common.subset_medians(summary, subsets)

    document = common.write_results(
        NAME, args, info, rendered, subsets, configs=configs, training=trainings, scores=scores
    )
    data = document["data"]

    speed = [
        "| | upstream 2.4.2 | this project |",
        "|---|---:|---:|",
    ]
    up, ours = trainings["upstream"], trainings["ours"]
    rows = [
        ("steps", "steps_done", "{}"),
        ("wall time of `spleeter train` (s)", "wall_s", "{:.0f}"),
        ("first progress line after (s)", "first_progress_line_s", "{}"),
        (f"steps/s from step {args.rate_after_step} to the end (log line times)",
         "steps_per_s_steady", "{}"),
        ("steps/s overall (steps / wall time, start-up included)", "steps_per_s_overall", "{}"),
        ("median `global_step/sec` logged by upstream's Estimator",
         "upstream_global_step_per_sec_median", "{}"),
        ("training loss, first logged", "loss_first", "{:.4g}"),
        ("training loss, last logged", "loss_last", "{:.4g}"),
        ("validation loss at the end", "validation", "{}"),
    ]  # fmt: skip
    for title, key, fmt in rows:
        cells = []
        for t in (up, ours):
            value = t.get(key)
            if key == "validation":
                value = value[-1][1] if value else None
                fmt_ = "{:.4g}"
            else:
                fmt_ = fmt
            cells.append("n/a" if value is None else fmt_.format(value))
        speed.append(f"| {title} | " + " | ".join(cells) + " |")
    ratio = (
        ours["steps_per_s_steady"] / up["steps_per_s_steady"]
        if ours.get("steps_per_s_steady") and up.get("steps_per_s_steady") else None
    )  # fmt: skip
    markdown = f"""# The same tiny 4-stem U-Net trained by upstream 2.4.2 and by this project

Command: `{document["command"]}`

Machine: {common.machine_markdown(info)}

Data:
{common.data_markdown(data, subsets)}

Configuration (both): `unet.unet`, conv_n_filters {filters}, ELU/ELU, T = {args.T}, F = 1024,
batch {args.batch_size}, Adam lr {args.learning_rate}, L1 mask loss, random_seed {args.seed},
{args.steps} steps, chunks of 8 s (3 per song), {ours.get("trainable_parameters") or "?"} trainable
parameters; TF_DETERMINISTIC_OPS=1, PYTHONHASHSEED=0, CPU only, for both.

## Speed

{chr(10).join(speed)}

Steady-state ratio (this project / upstream): {f"{ratio:.2f}" if ratio else "n/a"}

## Separation quality (both checkpoints scored by this project's `spleeter evaluate`)

{common.sdr_tables(list(scores.items()), reference="mixture as estimate")}
"""
    common.write_markdown(NAME, args, markdown)


if __name__ == "__main__":
    main()
