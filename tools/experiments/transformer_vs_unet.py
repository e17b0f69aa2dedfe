#!/usr/bin/env python
"""Issue 12: the Zipformer-style transformer (``transformer.zipformer``, small preset) against
the U-Net under an equal wall-clock budget per arm, on the same rendered songs and split.

    python tools/experiments/transformer_vs_unet.py                       # 2 arms x 3 seeds
    python tools/experiments/transformer_vs_unet.py --budget-minutes 4 --seeds 1,2,3
    python tools/experiments/transformer_vs_unet.py --smoke               # end-to-end check
    python tools/experiments/transformer_vs_unet.py --budget-minutes 20 --seeds 1 \
        --curve-points 4 --name long_curve                                 # a longer curve
    python tools/experiments/transformer_vs_unet.py --arms transformer,transformer-presence \
        --name presence                                                    # an ablation

The arms are the training recipes ``configs/rendered/4stems-small.json`` (U-Net, conv_n_filters
4..128) and ``configs/rendered/4stems-transformer.json`` (T = 256, F = 512 for both), with
paths, seed and caches set here (``ARMS`` adds variants: the presence loss, ...). For each
seed the arms train back to back (the order rotating from seed to seed, so all see the same
machine load), each for the same budget of wall time of its whole ``spleeter train`` process,
and are scored by ``spleeter evaluate`` (museval v4 and fast_bss_eval) on the held-out rendered
songs and the real MUSDB excerpt. The first seed's arms also stop at ``--curve-points`` equal
steps of the budget for a score there (the learning curve: SDR vs wall time; each stop
restarts ``spleeter train``, whose start-up counts in the budget). Writes
``WORK/results/<name>.{json,md}`` and the curve's PNG.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

NAME = "transformer_vs_unet"
UNET = common.REPO / "configs" / "rendered" / "4stems-small.json"
TRANSFORMER = common.REPO / "configs" / "rendered" / "4stems-transformer.json"
# arm -> (recipe, top-level overrides, model.params overrides)
ARMS = {
    "unet": (UNET, {}, {}),
    "transformer": (TRANSFORMER, {}, {}),
    "transformer-presence": (TRANSFORMER, {}, {"presence_loss_weight": 0.1}),
    # icefall's Zipformer rate and decay; ScaledAdam has no weight decay
    "transformer-scaledadam": (
        TRANSFORMER,
        {
            "optimizer": "ScaledAdam",
            "learning_rate": 0.045,
            "lr_decay": "eden",
            "weight_decay": None,
        },
        {},
    ),
}
TITLES = {
    "unet": "U-Net (4stems-small)",
    "transformer": "Zipformer transformer (small)",
    "transformer-presence": "transformer + presence loss (weight 0.1)",
    "transformer-scaledadam": "transformer, ScaledAdam (lr 0.045, Eden)",
}


def arm_config(args, arm: str, seed: int, rendered: Path, run_dir: Path) -> dict:
    recipe_path, overrides, model_overrides = ARMS[arm]
    recipe = json.loads(recipe_path.read_text())
    model = dict(recipe["model"], params={**recipe["model"]["params"], **model_overrides})
    extra = {k: v for k, v in recipe.items() if k in ("optimizer", "weight_decay", "warmup_steps",
                                                      "lr_decay", "clip_norm")}  # fmt: skip
    extra.update({k: v for k, v in overrides.items() if k != "learning_rate"})
    extra = {k: v for k, v in extra.items() if v is not None}
    if args.smoke:
        extra["warmup_steps"] = min(extra.get("warmup_steps", 0), 5)
    return common.make_config(
        rendered=rendered,
        model_dir=run_dir / "model",
        cache_dir=args.work / "cache" / NAME,
        model=model,
        T=args.T,
        F=recipe["F"],
        batch_size=recipe["batch_size"],
        learning_rate=overrides.get("learning_rate", recipe["learning_rate"]),
        seed=seed,
        save_checkpoints_steps=50,
        throttle_secs=60,
        **extra,
    )


def main() -> None:
    parser = common.argument_parser(
        __doc__, budget_minutes=4.0, budget_help="wall-clock training budget per arm and seed"
    )
    parser.add_argument("--seeds", default="1,2,3", help="training seeds, comma-separated")
    parser.add_argument("--T", type=int, default=256, help="frames per training example")
    parser.add_argument(
        "--arms", default="unet,transformer",
        help=f"arms, comma-separated, the first is the reference ({', '.join(ARMS)})",
    )  # fmt: skip
    parser.add_argument(
        "--curve-points", type=int, default=2,
        help="the first seed's arms are scored at this many equal steps of the budget",
    )  # fmt: skip
    parser.add_argument(
        "--name", default=NAME, help="names the runs and WORK/results/<name>.{json,md,png}"
    )
    parser.add_argument("--plot", type=Path, default=None, help="also write the curve here")
    args = parser.parse_args()
    common.apply_smoke(args)
    seeds = [int(s) for s in args.seeds.split(",")]
    arms = args.arms.split(",")
    unknown = [a for a in arms if a not in ARMS]
    if unknown or len(arms) < 2 or args.curve_points < 1:
        parser.error(f"--arms needs two or more of {', '.join(ARMS)}; --curve-points >= 1")
    if args.smoke:
        args.budget_minutes, args.T, seeds = 1.0, 64, seeds[:1]
    budget = args.budget_minutes * 60
    info = common.machine()
    rendered, evalset, subsets, baseline = common.prepare_data(args)
    mixture = common.subset_medians(baseline, subsets)
    start = {s: common.average_sdr(mixture, s, "museval-v4") for s in common.SUBSETS}

    def curve_point(wall: float, steps: int, scores: dict) -> dict:
        sdr = {s: common.average_sdr(scores, s, "museval-v4") for s in common.SUBSETS}
        return {"wall_s": wall, "steps": steps, "sdr": sdr}

    runs: dict[str, dict[int, dict]] = {arm: {} for arm in arms}
    curves: dict[str, list] = {arm: [{"wall_s": 0.0, "steps": 0, "sdr": start}] for arm in runs}
    for index, seed in enumerate(seeds):
        # the order rotates from seed to seed, so every arm sees the same machine load
        for arm in arms[index % len(arms) :] + arms[: index % len(arms)]:
            run_dir = args.work / "runs" / args.name / f"{arm}-seed{seed}"
            config = arm_config(args, arm, seed, rendered, run_dir)
            common.log(f"seed {seed}: training {arm} for {budget:.0f} s")
            # the learning curve: the first seed stops at equal steps of its budget for a score
            stops = [budget * (i + 1) / args.curve_points for i in range(args.curve_points)]
            stops = stops if index == 0 else [budget]
            parts, wall = [], 0.0
            for n, stop in enumerate(stops):
                tag = "train" if len(stops) == 1 else f"train-{n + 1}of{len(stops)}"
                part = common.train(
                    run_dir, config, rendered, budget_s=stop - wall, resume=n > 0, tag=tag
                )
                parts.append(part)
                wall += part["wall_s"]
                if n < len(stops) - 1:
                    summary = common.evaluate(
                        run_dir, config, evalset, tag=f"eval-{n + 1}of{len(stops)}", jobs=args.jobs
                    )
                    scores = common.subset_medians(summary, subsets)
                    curves[arm].append(curve_point(wall, part["final_step"], scores))
            summary = common.evaluate(run_dir, config, evalset, jobs=args.jobs)
            scores = common.subset_medians(summary, subsets)
            runs[arm][seed] = {
                "config": config,
                "training": parts,
                "wall_s": round(wall, 1),
                "steps": parts[-1]["final_step"],
                "parameters": parts[0]["trainable_parameters"],
                "scores": scores,
            }
            if index == 0:
                curves[arm].append(curve_point(wall, parts[-1]["final_step"], scores))

    # -- tables ------------------------------------------------------------------------------
    def mean_over_seeds(arm: str, subset: str, protocol: str, fn=common.average_sdr) -> tuple:
        values = [fn(r["scores"], subset, protocol) for r in runs[arm].values()]
        values = [v for v in values if v is not None]
        if not values:
            return None, None
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        return round(statistics.fmean(values), 2), round(spread, 2)

    lines = []
    for subset in common.SUBSETS:
        for protocol in common.PROTOCOLS:
            lines.append(f"\n{common.SUBSET_TITLES[subset]}, `{protocol}`: average over stems "
                         "of the median SDR (per seed), mean +- std over seeds\n")  # fmt: skip
            lines.append("| arm | " + " | ".join(f"seed {s}" for s in seeds)
                         + " | mean +- std | SI-SDR mean |")  # fmt: skip
            lines.append("|---|" + "---:|" * (len(seeds) + 2))
            for arm in runs:
                cells = [common._fmt(common.average_sdr(runs[arm][s]["scores"], subset, protocol))
                         for s in seeds]  # fmt: skip
                mean, std = mean_over_seeds(arm, subset, protocol)
                si, _ = mean_over_seeds(arm, subset, protocol, common.average_si_sdr)
                summary_cells = f"{common._fmt(mean)} +- {common._fmt(std)} | {common._fmt(si)}"
                lines.append(f"| {TITLES[arm]} | " + " | ".join(cells) + f" | {summary_cells} |")
            base = common.average_sdr(mixture, subset, protocol)
            lines.append(f"| mixture as estimate | {common._fmt(base)} | | | |")
    per_stem = []
    for seed in seeds:
        rows = [(f"{TITLES[arm]}, seed {seed}", runs[arm][seed]["scores"]) for arm in runs]
        per_stem.extend(rows)
    reference = arms[0]
    gap = {}  # arm -> subset -> mean over seeds minus the reference arm's
    for arm in arms[1:]:
        gap[arm] = {}
        for subset in common.SUBSETS:
            t, _ = mean_over_seeds(arm, subset, "museval-v4")
            u, _ = mean_over_seeds(reference, subset, "museval-v4")
            gap[arm][subset] = None if t is None or u is None else round(t - u, 2)
    gap_lines = [
        f"- {TITLES[arm]} minus {TITLES[reference]}: rendered {g['rendered']} dB, "
        f"MUSDB excerpt {g['musdb-excerpt']} dB"
        for arm, g in gap.items()
    ]
    training_lines = []
    for arm in runs:
        for seed in seeds:
            r = runs[arm][seed]
            validation = [v for p in r["training"] for v in p["validation"]]
            training_lines.append(
                f"| {TITLES[arm]} | {seed} | {r['parameters']} | {r['wall_s']:.0f} | {r['steps']} "
                f"| {validation[-1][1] if validation else 'n/a'} |"
            )
    document = common.write_results(
        args.name, args, info, rendered, subsets, budget_s=budget, seeds=seeds,
        runs={arm: {str(s): v for s, v in r.items()} for arm, r in runs.items()},
        curves=curves, mixture=mixture, gap_museval_v4=gap,
    )  # fmt: skip
    figure = args.work / "results" / f"{args.name}.png"
    title = f"first seed ({seeds[0]}), equal wall time, 2 CPU cores"
    common.plot_curves(curves, TITLES, figure, title)
    if args.plot:
        common.plot_curves(curves, TITLES, args.plot, title)
    curve_rows = [
        f"| {TITLES[arm]} | {p['wall_s'] / 60:.1f} | {p['steps']} | "
        f"{common._fmt(p['sdr']['rendered'])} | {common._fmt(p['sdr']['musdb-excerpt'])} |"
        for arm, points in curves.items()
        for p in points
    ]
    markdown = f"""# {", ".join(TITLES[a] for a in arms)}: equal wall time (generated)

Command: `{document["command"]}`

Machine: {common.machine_markdown(info)}

Data:
{common.data_markdown(document["data"], subsets)}

Budget: {args.budget_minutes:g} min of wall time per arm and seed (the whole `spleeter train`
process), seeds {", ".join(map(str, seeds))}.

{chr(10).join(lines)}

Differences of museval-v4 average SDR, mean over seeds:
{chr(10).join(gap_lines)}

| arm | seed | parameters | wall (s) | steps | last validation loss |
|---|---:|---:|---:|---:|---:|
{chr(10).join(training_lines)}

Learning curve (first seed; museval v4 average SDR):

| arm | wall (min) | steps | rendered | MUSDB excerpt |
|---|---:|---:|---:|---:|
{chr(10).join(curve_rows)}

Per stem:

{common.sdr_tables(per_stem)}
"""
    common.write_markdown(args.name, args, markdown)


if __name__ == "__main__":
    main()
