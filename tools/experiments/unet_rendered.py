#!/usr/bin/env python
"""Issue 3 (a): train the 4-stem U-Net on rendered songs on this CPU for a fixed wall-clock
budget, evaluate it on held-out rendered songs and on the real MUSDB excerpt, against the
mixture-as-estimate baseline.

    python tools/experiments/unet_rendered.py                    # ~20 min on 2 cores
    python tools/experiments/unet_rendered.py --steps 300        # a fixed number of steps instead
    python tools/experiments/unet_rendered.py --smoke            # end-to-end check, few minutes

The network is the released ``spleeter:4stems`` architecture (six 5x5 stride-2 levels with
16..512 filters, ELU, F = 1024 bins, 4 x 9.8 M parameters); only the training schedule is
sized for a CPU (``--T``, ``--batch-size``, ``--learning-rate``). Writes
``WORK/results/unet_rendered.{json,md}``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

NAME = "unet_rendered"


def main() -> None:
    parser = common.argument_parser(
        __doc__,
        budget_minutes=15.0,
        budget_help="wall-clock training budget (the whole spleeter train process)",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="train exactly this many steps (no wall-clock budget)",
    )
    common.add_training_arguments(
        parser, T=256, filters=None, filters_help="conv_n_filters (default: the released 16..512)"
    )
    args = parser.parse_args()  # fmt: skip
    common.apply_smoke(args)
    if args.smoke:
        args.budget_minutes, args.T, args.filters = 1.5, 64, "4,4,8,8,16,16"
    filters = common.parse_filters(args.filters)
    info = common.machine()
    rendered, evalset, subsets, baseline = common.prepare_data(args)

    run_dir = args.work / "runs" / NAME / "unet"
    config = common.make_config(
        rendered=rendered,
        model_dir=run_dir / "model",
        cache_dir=args.work / "cache" / "ours",
        model={"type": "unet.unet", "params": common.unet_params(filters)},
        T=args.T,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
        save_checkpoints_steps=100,
    )
    budget = None if args.steps is not None else args.budget_minutes * 60
    training = common.train(run_dir, config, rendered, steps=args.steps, budget_s=budget)
    summary = common.evaluate(run_dir, config, evalset, jobs=args.jobs)

    scores = {
        "mixture as estimate": common.subset_medians(baseline, subsets),
        "U-Net (4stems architecture)": common.subset_medians(summary, subsets),
    }
    document = common.write_results(
        NAME, args, info, rendered, subsets, config=config, training=training, scores=scores
    )
    data = document["data"]
    rows = list(scores.items())
    t = training
    schedule = (
        f"budget {args.budget_minutes:g} min of wall time" if budget else f"{args.steps} steps"
    )
    markdown = f"""# 4-stem U-Net trained on rendered songs (CPU, fixed budget)

Command: `{document["command"]}`

Machine: {common.machine_markdown(info)}

Data:
{common.data_markdown(data, subsets)}

Training: `unet.unet`, conv_n_filters {filters or "default (16, 32, 64, 128, 256, 512)"},
ELU/ELU, T = {args.T}, F = 1024, batch {args.batch_size}, Adam lr {args.learning_rate},
L1 mask loss, seed {args.seed}, {t["trainable_parameters"] or "?"} trainable parameters;
{schedule}:
{t["steps_done"]} steps in {t["wall_s"]:.0f} s ({t["steps_per_s_steady"]} steps/s after step
{t["steady_rate_from_step"]}, {t["steps_per_s_overall"]} overall); training loss
{t["loss_first"]} -> {t["loss_last"]}; validation {t["validation"]}.

Medians over tracks of each track's median over 1-s windows (upstream's aggregation).

{common.sdr_tables(rows, reference="mixture as estimate")}
"""
    common.write_markdown(NAME, args, markdown)


if __name__ == "__main__":
    main()
