#!/usr/bin/env python
"""Issue 14: does an SSL-fused U-Net initialised from a trained U-Net beat that U-Net trained on
for the same wall time? Same rendered training songs, same U-Net, several seeds, this CPU.

    python tools/experiments/ssl_vs_unet.py                          # ~80 min on 2 cores
    python tools/experiments/ssl_vs_unet.py --smoke

1. **Base**: ``spleeter train`` of ``unet.unet`` for ``--base-minutes`` (scored: the point both
   arms start from).
2. **Encoder**: ``spleeter pretrain -d TRAIN_SPLIT`` (HuBERT-style, MFCC units then units of
   layer ``--recluster-layer``) on every audio file of the training songs: mixtures *and* stems
   (no validation or test song). Its wall time is reported apart: it is paid once, for every
   seed and every ablation.
3. **Arms**, for each seed, for ``--budget-minutes`` of training wall time each, both started
   with ``--init-from BASE`` (so both reset Adam's moments the same way):
   - *U-Net, continued*: ``unet.unet``, the base's weights;
   - *SSL-fused*: ``unet.ssl_unet`` with ``fusion_style: residual`` (zero-initialised, so at
     step 0 its output is exactly the base's), encoder frozen, fused at the input and the
     bottleneck, features of the encoder's last layer.
   Each arm is scored at its end; with the first seed also at half its budget (the curve).
   The arm order alternates between seeds.
4. **Ablations** (``--ablations``, first seed, scored at the end): encoder fine-tuned,
   input-only fusion, and optionally bottleneck-only fusion, features of layer
   ``--recluster-layer``.

Writes ``WORK/results/ssl_vs_unet.{json,md,png}``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

NAME = "ssl_vs_unet"
ITERATION_DONE = re.compile(r"Iteration (\d+): masked prediction done \(([0-9.eE+-]+) steps/s\)")
SI_SDR_PROTOCOL = "fast_bss_eval"  # museval v4 has no SI-SDR
TITLES = {"unet": "U-Net, continued", "ssl": "SSL-fused, from the U-Net"}
ABLATIONS = {
    "finetuned": ("encoder fine-tuned", {"encoder_trainable": True}),
    "input": ("input fusion only", {"fusion": "input"}),
    "bottleneck": ("bottleneck fusion only", {"fusion": "bottleneck"}),
    "layer": ("features of the re-clustered layer", {"feature_layer": "RECLUSTER"}),
}


def encoder_architecture(args: argparse.Namespace) -> dict:
    """A CPU-sized encoder (the class defaults of ``EncoderConfig``; bundled: dim 256, 6 layers)."""
    return {
        "sample_rate": 44100,
        "frame_length": 4096,
        "n_mels": args.n_mels,
        "fmin": 0.0,
        "fmax": None,
        "conv_layers": 2,
        "conv_channels": args.encoder_dim,
        "conv_kernel": 5,
        "dim": args.encoder_dim,
        "layers": args.encoder_layers,
        "heads": 4,
        "ff_dim": 4 * args.encoder_dim,
        "pos_conv_kernel": 32,
        "pos_conv_groups": 8,
        "dropout": 0.1,
        "layer_norm_epsilon": 1e-05,
    }


def pretrain(run_dir: Path, config: dict, audio: Path) -> dict:
    """``spleeter pretrain`` of the encoder on every audio file below ``audio`` (once)."""
    marker = run_dir / "pretrain.json"
    if marker.is_file():
        return common.read_json(marker)
    encoder_dir = Path(config["model"]["params"]["encoder_dir"])
    if encoder_dir.exists():
        shutil.rmtree(encoder_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path = run_dir / "config.json"
    common.write_json(config_path, config)
    command = [
        *common.spleeter_command(), "pretrain", "-p", config_path, "-d", audio,
    ]  # fmt: skip
    result = common.run_command(command, run_dir / "pretrain.log", cwd=run_dir)
    done = [
        (int(m.group(1)), float(m.group(2)))
        for _, line in result["lines"]
        if (m := ITERATION_DONE.search(line))
    ]  # fmt: skip
    corpus = [line for _, line in result["lines"] if "Pretraining audio:" in line]
    document = {
        "command": " ".join(map(str, command)),
        "wall_s": round(result["wall_s"], 1),
        "iterations": [{"iteration": i, "steps_per_s": rate} for i, rate in done],
        "corpus": corpus[0].split("Pretraining audio:", 1)[1].strip() if corpus else None,
        "accuracy": masked_accuracy(encoder_dir),
    }
    common.write_json(marker, document)
    common.log(f"  pretraining took {result['wall_s']:.0f} s: {document['iterations']}")
    return document


def masked_accuracy(encoder_dir: Path) -> dict:
    """First and last ``masked_accuracy`` scalar of each iteration (from its event files)."""
    code = (
        "import sys,json,glob,tensorflow as tf\n"
        "out={}\n"
        "for d in sorted(glob.glob(sys.argv[1]+'/iteration-*')):\n"
        "  vals=[]\n"
        "  for f in sorted(glob.glob(d+'/events.out.tfevents.*')):\n"
        "    for e in tf.compat.v1.train.summary_iterator(f):\n"
        "      for v in e.summary.value:\n"
        "        if v.tag=='masked_accuracy':\n"
        "          x=tf.make_ndarray(v.tensor) if v.HasField('tensor') else v.simple_value\n"
        "          vals.append((e.step, float(x)))\n"
        "  vals.sort()\n"
        "  f,l=(vals[0],vals[-1]) if vals else (None,None)\n"
        "  out[d.rsplit('/',1)[1]]={'first':f,'last':l}\n"
        "print(json.dumps(out))\n"
    )  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", code, str(encoder_dir)],
        env=common.base_env(), capture_output=True, text=True, check=False,
    )  # fmt: skip
    try:
        return json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": result.stderr[-500:]}


def fused_params(args: argparse.Namespace, filters, encoder_dir: Path, **overrides) -> dict:
    params = dict(
        common.unet_params(filters),
        encoder=encoder_architecture(args),
        encoder_dir=str(encoder_dir),
        encoder_trainable=False,
        feature_layer=None,
        fusion="both",
        fusion_style="residual",
        input_channels=4,
        bottleneck_channels=32,
    )
    for key, value in overrides.items():
        params[key] = args.recluster_layer if value == "RECLUSTER" else value
    return params


def scores_at(summary: Path, subsets: dict) -> dict:
    scores = common.subset_medians(summary, subsets)
    return {
        "scores": scores,
        "sdr": {s: common.average_sdr(scores, s, "museval-v4") for s in common.SUBSETS},
    }


def train_arm(args, run_dir: Path, config: dict, rendered: Path, evalset: Path, subsets: dict,
              base_dir: Path, budget: float, halves: bool) -> dict:  # fmt: skip
    """Train from the base for ``budget`` seconds (in two halves, each scored, or straight)."""
    points, parts = [], []
    if halves:
        first = common.train(run_dir, config, rendered, budget_s=budget / 2,
                             init_from=base_dir, tag="train-half")  # fmt: skip
        parts.append(first)
        summary = common.evaluate(run_dir, config, evalset, tag="eval-half", jobs=args.jobs)
        points.append({"wall_s": first["wall_s"], "steps": first["final_step"],
                       **scores_at(summary, subsets)})  # fmt: skip
        parts.append(common.train(run_dir, config, rendered, budget_s=budget - first["wall_s"],
                                  resume=True, tag="train-rest"))  # fmt: skip
    else:
        parts.append(common.train(run_dir, config, rendered, budget_s=budget, init_from=base_dir))
    summary = common.evaluate(run_dir, config, evalset, jobs=args.jobs)
    wall = sum(p["wall_s"] for p in parts)
    points.append({"wall_s": round(wall, 1), "steps": parts[-1]["final_step"],
                   **scores_at(summary, subsets)})  # fmt: skip
    return {
        "training": parts,
        "wall_s": round(wall, 1),
        "steps": parts[-1]["final_step"],
        "steps_per_s": parts[-1]["steps_per_s_overall"],
        "parameters": parts[0]["trainable_parameters"],
        "points": points,
        "scores": points[-1]["scores"],
    }


def mean_std(values: list) -> tuple:
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def main() -> None:
    parser = common.argument_parser(
        __doc__, budget_minutes=3.0, budget_help="training wall time of each arm after the base"
    )
    common.add_training_arguments(
        parser, T=256, filters="8,16,32,64,128,256", filters_help="conv_n_filters of every U-Net"
    )
    parser.add_argument("--base-minutes", type=float, default=6.0, help="the base U-Net's budget")
    parser.add_argument("--seeds", default="1,2,3", help="seeds of the arms, comma-separated")
    parser.add_argument(
        "--ablations",
        default=",".join(ABLATIONS),
        help=f"comma-separated subset of {list(ABLATIONS)} ('' for none)",
    )
    parser.add_argument("--pretrain-steps", type=int, default=200, help="per iteration")
    parser.add_argument("--units", default="50,100", help="units of iterations 1 and 2")
    parser.add_argument("--recluster-layer", type=int, default=2)
    parser.add_argument("--n-mels", type=int, default=64)
    parser.add_argument("--encoder-dim", type=int, default=128)
    parser.add_argument("--encoder-layers", type=int, default=4)
    args = parser.parse_args()  # fmt: skip
    common.apply_smoke(args)
    seeds = [int(s) for s in args.seeds.split(",")]
    ablations = [a for a in args.ablations.split(",") if a]
    if args.smoke:
        args.budget_minutes, args.base_minutes, args.T = 1.0, 1.0, 64
        args.filters, seeds, ablations = "4,4,8,8,16,16", seeds[:1], ablations[:1]
        args.pretrain_steps, args.units = 20, "8,8"
        args.encoder_dim, args.encoder_layers, args.n_mels, args.recluster_layer = 32, 2, 32, 1
    filters = common.parse_filters(args.filters)
    units = [int(x) for x in args.units.split(",")]
    budget = args.budget_minutes * 60
    info = common.machine()
    rendered, evalset, subsets, baseline = common.prepare_data(args)
    mixture = scores_at(baseline, subsets)
    root = args.work / "runs" / NAME

    def config_for(run_dir: Path, model: dict, seed: int) -> dict:
        return common.make_config(
            rendered=rendered, model_dir=run_dir / "model", cache_dir=args.work / "cache" / "ours",
            model=model, T=args.T, batch_size=args.batch_size, learning_rate=args.learning_rate,
            seed=seed, save_checkpoints_steps=100, throttle_secs=100_000,
        )  # fmt: skip

    unet_model = {"type": "unet.unet", "params": common.unet_params(filters)}

    # -- 1. the base U-Net -----------------------------------------------------------------
    base_run = root / "base"
    base_config = config_for(base_run, unet_model, args.seed)
    common.log(f"base U-Net for {args.base_minutes * 60:.0f} s")
    base_training = common.train(base_run, base_config, rendered, budget_s=args.base_minutes * 60)
    base = {"wall_s": 0.0, "steps": 0,
            **scores_at(common.evaluate(base_run, base_config, evalset, jobs=args.jobs),
                        subsets)}  # fmt: skip
    base_dir = Path(base_config["model_dir"])

    # -- 2. the encoder, on the training songs' mixtures and stems ---------------------------
    encoder_dir = root / "encoder"
    pretrain_config = config_for(
        root / "pretrain",
        {"type": "unet.ssl_unet", "params": fused_params(args, filters, encoder_dir)},
        args.seed,
    )
    pretrain_config["pretrain"] = {
        "iterations": [
            {"units": units[0], "target": "mfcc", "steps": args.pretrain_steps},
            {"units": units[1], "target": "layer", "layer": args.recluster_layer,
             "steps": args.pretrain_steps},
        ],
        "frames": args.T, "batch_size": 8, "learning_rate": 5e-4,
        "warmup_steps": max(1, args.pretrain_steps // 8), "mask_prob": 0.08, "mask_length": 10,
        "chunk_duration": 8.0, "n_chunks_per_file": 3, "kmeans_max_frames": 100000,
        "save_checkpoints_steps": 200, "save_summary_steps": 10,
    }  # fmt: skip
    pretraining = pretrain(root / "pretrain", pretrain_config, rendered / "train")

    # -- 3. the two arms, every seed --------------------------------------------------------
    runs: dict[str, dict[int, dict]] = {"unet": {}, "ssl": {}}
    for index, seed in enumerate(seeds):
        for arm in ("unet", "ssl") if index % 2 == 0 else ("ssl", "unet"):
            run_dir = root / f"{arm}-seed{seed}"
            model = unet_model if arm == "unet" else {
                "type": "unet.ssl_unet", "params": fused_params(args, filters, encoder_dir)
            }  # fmt: skip
            common.log(f"seed {seed}: {TITLES[arm]} for {budget:.0f} s")
            runs[arm][seed] = train_arm(args, run_dir, config_for(run_dir, model, seed),
                                        rendered, evalset, subsets, base_dir, budget,
                                        halves=index == 0)  # fmt: skip

    # -- 4. ablations of the fused arm, first seed ---------------------------------------------
    ablation_runs = {}
    for name in ablations:
        title, overrides = ABLATIONS[name]
        run_dir = root / f"ssl-{name}-seed{seeds[0]}"
        model = {"type": "unet.ssl_unet",
                 "params": fused_params(args, filters, encoder_dir, **overrides)}  # fmt: skip
        common.log(f"ablation {title} for {budget:.0f} s")
        ablation_runs[name] = train_arm(args, run_dir, config_for(run_dir, model, seeds[0]),
                                        rendered, evalset, subsets, base_dir, budget,
                                        halves=False)  # fmt: skip

    # -- tables ------------------------------------------------------------------------------
    def arm_stats(arm: str, subset: str, protocol: str, fn=common.average_sdr) -> tuple:
        return mean_std([fn(r["scores"], subset, protocol) for r in runs[arm].values()])

    gaps = {}
    lines = []
    for subset in common.SUBSETS:
        for protocol in common.PROTOCOLS:
            b = common.average_sdr(base["scores"], subset, protocol)
            bsi = common.average_si_sdr(base["scores"], subset, SI_SDR_PROTOCOL)
            m = common.average_sdr(mixture["scores"], subset, protocol)
            lines.append(f"\n{common.SUBSET_TITLES[subset]}, `{protocol}`: average of the four "
                         "stems' median SDR, per seed; mean +- std over seeds\n")  # fmt: skip
            lines.append("| arm | " + " | ".join(f"seed {s}" for s in seeds)
                         + " | mean +- std | vs base | SI-SDR mean (fast_bss_eval) |")  # fmt: skip
            lines.append("|---|" + "---:|" * (len(seeds) + 3))
            lines.append(f"| mixture as estimate | {' | '.join('' for _ in seeds)} | "
                         f"{common._fmt(m)} | | |")  # fmt: skip
            lines.append(f"| base U-Net ({base_training['final_step']} steps) | "
                         f"{' | '.join('' for _ in seeds)} | {common._fmt(b)} | | "
                         f"{common._fmt(bsi)} |")  # fmt: skip
            for arm in ("unet", "ssl"):
                cells = [common._fmt(common.average_sdr(runs[arm][s]["scores"], subset, protocol))
                         for s in seeds]  # fmt: skip
                mean, std = arm_stats(arm, subset, protocol)
                si, _ = arm_stats(arm, subset, SI_SDR_PROTOCOL, common.average_si_sdr)
                delta = None if mean is None or b is None else mean - b
                lines.append(f"| {TITLES[arm]} | {' | '.join(cells)} | {common._fmt(mean)} +- "
                             f"{common._fmt(std)} | {common._fmt(delta, True)} | "
                             f"{common._fmt(si)} |")  # fmt: skip
            s_mean, _ = arm_stats("ssl", subset, protocol)
            u_mean, _ = arm_stats("unet", subset, protocol)
            per_seed = [
                None if None in (x, y) else round(x - y, 3)
                for x, y in (
                    (common.average_sdr(runs["ssl"][s]["scores"], subset, protocol),
                     common.average_sdr(runs["unet"][s]["scores"], subset, protocol))
                    for s in seeds
                )
            ]  # fmt: skip
            gaps[f"{subset} {protocol}"] = {
                "mean": None if None in (s_mean, u_mean) else round(s_mean - u_mean, 3),
                "per_seed": per_seed,
            }
    ablation_lines = [
        "| fused variant (seed " + str(seeds[0]) + ") | steps | rendered SDR | MUSDB SDR | "
        "rendered SI-SDR |",
        "|---|---:|---:|---:|---:|",
    ]
    reference = runs["ssl"][seeds[0]]
    for title, run in [("main arm (frozen, both, last layer)", reference)] + [
        (ABLATIONS[n][0], r) for n, r in ablation_runs.items()
    ]:
        sc = run["scores"]
        ablation_lines.append(
            f"| {title} | {run['steps']} | "
            f"{common._fmt(common.average_sdr(sc, 'rendered', 'museval-v4'))} | "
            f"{common._fmt(common.average_sdr(sc, 'musdb-excerpt', 'museval-v4'))} | "
            f"{common._fmt(common.average_si_sdr(sc, 'rendered', SI_SDR_PROTOCOL))} |"
        )
    unet_seed1 = runs["unet"][seeds[0]]["scores"]
    ablation_lines.append(
        f"| (U-Net, continued) | {runs['unet'][seeds[0]]['steps']} | "
        f"{common._fmt(common.average_sdr(unet_seed1, 'rendered', 'museval-v4'))} | "
        f"{common._fmt(common.average_sdr(unet_seed1, 'musdb-excerpt', 'museval-v4'))} | "
        f"{common._fmt(common.average_si_sdr(unet_seed1, 'rendered', SI_SDR_PROTOCOL))} |"
    )

    curves = {arm: [dict(base, scores=None)] for arm in runs}
    for arm in runs:
        for seed in seeds[:1]:
            curves[arm] += [dict(p, scores=None) for p in runs[arm][seed]["points"]]
    figure = args.work / "results" / f"{NAME}.png"
    figure.parent.mkdir(parents=True, exist_ok=True)
    title = f"seed {seeds[0]}, from the base U-Net, equal wall time, 2 CPU cores"
    common.plot_curves(curves, TITLES, figure, title)
    curve_rows = ["| arm (seed " + str(seeds[0]) + ") | wall (min) | steps | rendered | MUSDB |",
                  "|---|---:|---:|---:|---:|"]  # fmt: skip
    for arm in runs:
        for p in curves[arm]:
            curve_rows.append(f"| {TITLES[arm]} | {p['wall_s'] / 60:.1f} | {p['steps']} | "
                              f"{common._fmt(p['sdr']['rendered'])} | "
                              f"{common._fmt(p['sdr']['musdb-excerpt'])} |")  # fmt: skip

    common.write_results(
        NAME, args, info, rendered, subsets, budget_s=budget, seeds=seeds,
        base={"training": base_training, "scores": base["scores"]},
        pretraining=pretraining, runs=runs, ablations=ablation_runs,
        gap_ssl_minus_unet=gaps,
    )  # fmt: skip
    speeds = {arm: mean_std([r["steps_per_s"] for r in runs[arm].values()])[0] for arm in runs}
    gap_lines = "\n".join(
        f"- {k}: {common._fmt(v['mean'], True)} dB (per seed {v['per_seed']})"
        for k, v in gaps.items()
    )
    markdown = f"""# SSL-fused U-Net from a trained U-Net vs the U-Net continued (CPU)

Command: `{common.command_line()}`

Machine: {common.machine_markdown(info)}

Base U-Net: conv_n_filters {filters}, T = {args.T}, batch {args.batch_size}, Adam lr
{args.learning_rate}, {base_training["final_step"]} steps in {base_training["wall_s"]:.0f} s.
Encoder: {encoder_architecture(args)}, pretrained in {pretraining["wall_s"]:.0f} s on
{pretraining["corpus"]} (units {units}, masked accuracy {pretraining["accuracy"]}).
Arms: {budget:.0f} s of training each, seeds {seeds}; steps/s (overall, incl. start-up):
U-Net {speeds["unet"]:.3f}, fused {speeds["ssl"]:.3f}.

{chr(10).join(lines)}

SSL-fused minus U-Net continued (average SDR, mean over seeds):
{gap_lines}

## Curve

{chr(10).join(curve_rows)}

## Ablations

{chr(10).join(ablation_lines)}
"""
    common.write_markdown(NAME, args, markdown)


if __name__ == "__main__":
    main()
