#!/usr/bin/env python
"""Issue 5: U-Net baseline against the SSL-fused U-Net (``unet.ssl_unet``), same rendered
training songs, same U-Net, same wall-clock budget per arm on this CPU (the SSL arm's budget
includes pretraining its encoder), and the baseline also at the SSL arm's number of steps.

    python tools/experiments/ssl_vs_unet.py                      # ~55 min on 2 cores
    python tools/experiments/ssl_vs_unet.py --smoke

Arms, run in this order:

1. **SSL-fused**: ``spleeter pretrain`` (HuBERT-style, 2 iterations of ``--pretrain-steps``
   steps: MFCC units, then units of the first encoder's layer ``--recluster-layer``) on the
   training songs' mixtures only (no test song, no stem), then ``spleeter train`` of the fused
   separator (encoder frozen, fusion at the input and the bottleneck) for the rest of the
   budget: ``budget - pretraining wall time``.
2. **U-Net baseline**: ``spleeter train`` of ``unet.unet`` with the same filters, T, F, batch,
   learning rate and seed, first up to the SSL arm's final step (evaluated: "same steps"),
   then resumed (exact resume) until its processes have used the SSL arm's wall time (evaluated:
   "same wall time").

Writes ``WORK/results/ssl_vs_unet.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

NAME = "ssl_vs_unet"
ITERATION_DONE = re.compile(r"Iteration (\d+) done: loss ([0-9.eE+-]+) \(([0-9.eE+-]+) steps/s\)")


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


def pretrain(run_dir: Path, config: dict, rendered: Path) -> dict:
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
        *common.spleeter_command(), "pretrain", "-p", config_path, "-d", rendered,
        "--csv", rendered / "train.csv",
    ]  # fmt: skip
    result = common.run_command(command, run_dir / "pretrain.log", cwd=run_dir)
    done = [
        (int(m.group(1)), float(m.group(2)), float(m.group(3)))
        for _, line in result["lines"]
        if (m := ITERATION_DONE.search(line))
    ]  # fmt: skip
    corpus = [line for _, line in result["lines"] if "Pretraining audio:" in line]
    document = {
        "command": " ".join(map(str, command)),
        "wall_s": round(result["wall_s"], 1),
        "iterations": [
            {"iteration": i, "final_loss": loss, "steps_per_s": rate} for i, loss, rate in done
        ],
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


def main() -> None:
    parser = common.argument_parser(
        __doc__,
        budget_minutes=20.0,
        budget_help="wall-clock budget per arm (SSL: pretraining + training)",
    )
    common.add_training_arguments(
        parser, T=256, filters="8,16,32,64,128,256", filters_help="conv_n_filters of both U-Nets"
    )
    parser.add_argument("--pretrain-steps", type=int, default=300, help="per iteration")
    parser.add_argument("--units", default="50,100", help="units of iterations 1 and 2")
    parser.add_argument("--recluster-layer", type=int, default=2)
    parser.add_argument("--n-mels", type=int, default=64)
    parser.add_argument("--encoder-dim", type=int, default=128)
    parser.add_argument("--encoder-layers", type=int, default=4)
    parser.add_argument("--fusion", default="both", choices=["input", "bottleneck", "both"])
    parser.add_argument("--encoder-trainable", action="store_true")
    parser.add_argument("--feature-layer", type=int, default=None)
    args = parser.parse_args()  # fmt: skip
    common.apply_smoke(args)
    if args.smoke:
        args.budget_minutes, args.T, args.filters = 2.5, 64, "4,4,8,8,16,16"
        args.pretrain_steps, args.units = 20, "8,8"
        args.encoder_dim, args.encoder_layers, args.n_mels, args.recluster_layer = 32, 2, 32, 1
    filters = common.parse_filters(args.filters)
    units = [int(x) for x in args.units.split(",")]
    budget = args.budget_minutes * 60
    info = common.machine()
    rendered, evalset, subsets, baseline = common.prepare_data(args)
    shared = dict(
        rendered=rendered,
        cache_dir=args.work / "cache" / "ours",
        T=args.T,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
        save_checkpoints_steps=100,
    )

    # -- arm 1: SSL-fused -----------------------------------------------------------------
    ssl_dir = args.work / "runs" / NAME / "ssl"
    ssl_params = dict(
        common.unet_params(filters),
        encoder=encoder_architecture(args),
        encoder_dir=str(ssl_dir / "encoder"),
        encoder_trainable=bool(args.encoder_trainable),
        feature_layer=args.feature_layer,
        fusion=args.fusion,
        input_channels=4,
        bottleneck_channels=32,
    )
    ssl_config = common.make_config(
        model_dir=ssl_dir / "model",
        model={"type": "unet.ssl_unet", "params": ssl_params},
        pretrain={
            "iterations": [
                {"units": units[0], "target": "mfcc", "steps": args.pretrain_steps},
                {
                    "units": units[1],
                    "target": "layer",
                    "layer": args.recluster_layer,
                    "steps": args.pretrain_steps,
                },
            ],
            "frames": args.T,
            "batch_size": 8,
            "learning_rate": 5e-4,
            "warmup_steps": max(1, args.pretrain_steps // 8),
            "mask_prob": 0.08,
            "mask_length": 10,
            "chunk_duration": 8.0,
            "n_chunks_per_file": 3,
            "kmeans_max_frames": 100000,
            "save_checkpoints_steps": 200,
            "save_summary_steps": 10,
        },  # fmt: skip
        **shared,
    )
    pretraining = pretrain(ssl_dir, ssl_config, rendered)
    ssl_training = common.train(
        ssl_dir, ssl_config, rendered, budget_s=budget - pretraining["wall_s"]
    )
    ssl_steps = ssl_training["final_step"]
    ssl_summary = common.evaluate(ssl_dir, ssl_config, evalset, jobs=args.jobs)

    # -- arm 2: U-Net baseline ------------------------------------------------------------
    unet_dir = args.work / "runs" / NAME / "unet"
    unet_config = common.make_config(
        model_dir=unet_dir / "model",
        model={"type": "unet.unet", "params": common.unet_params(filters)},
        **shared,
    )
    # The baseline gets the wall time the SSL arm really used (its budget, plus the seconds
    # its last step and checkpoint took after the budget's Ctrl-C).
    ssl_wall = pretraining["wall_s"] + ssl_training["wall_s"]
    same_steps = common.train(
        unet_dir, unet_config, rendered, steps=ssl_steps, budget_s=ssl_wall,
        tag="train-same-steps",
    )  # fmt: skip
    same_steps_summary = common.evaluate(unet_dir, unet_config, evalset, tag="eval-same-steps",
                                         jobs=args.jobs)  # fmt: skip
    rest = common.train(
        unet_dir, unet_config, rendered, budget_s=ssl_wall - same_steps["wall_s"], resume=True,
        tag="train-rest",
    )  # fmt: skip
    unet_summary = common.evaluate(unet_dir, unet_config, evalset, jobs=args.jobs)

    scores = {
        "mixture as estimate": common.subset_medians(baseline, subsets),
        f"U-Net, same steps ({same_steps['final_step']})": common.subset_medians(
            same_steps_summary, subsets
        ),
        f"U-Net, same wall time ({rest['final_step']} steps)": common.subset_medians(
            unet_summary, subsets
        ),
        f"SSL-fused ({ssl_steps} steps)": common.subset_medians(ssl_summary, subsets),
    }
    names = list(scores)
    ssl_name, unet_wall_name, unet_steps_name = names[3], names[2], names[1]
    gains = {}
    for subset in common.SUBSETS:
        for protocol in common.PROTOCOLS:
            s = scores[ssl_name][subset][protocol]["average_SDR"]
            for ref in (unet_wall_name, unet_steps_name):
                r = scores[ref][subset][protocol]["average_SDR"]
                gains[f"{subset} {protocol} vs {ref}"] = (
                    None if s is None or r is None else round(s - r, 3)
                )
    document = common.write_results(
        NAME, args, info, rendered, subsets,
        budget_s=budget,
        configs={"ssl": ssl_config, "unet": unet_config},
        pretraining=pretraining,
        training={"ssl": ssl_training, "unet_same_steps": same_steps, "unet_rest": rest},
        scores=scores,
        average_sdr_gain_of_ssl=gains,
    )  # fmt: skip
    data = document["data"]

    unet_wall = same_steps["wall_s"] + rest["wall_s"]
    budget_rows = [
        "| | SSL-fused | U-Net baseline |",
        "|---|---:|---:|",
        f"| pretraining (2 iterations x {args.pretrain_steps} steps, k-means included) | "
        f"{pretraining['wall_s']:.0f} s | - |",
        f"| separator training | {ssl_training['wall_s']:.0f} s, {ssl_training['steps_done']} "
        f"steps | {unet_wall:.0f} s, {rest['final_step']} steps "
        f"({same_steps['wall_s']:.0f} s to step {same_steps['final_step']}, then resumed) |",
        f"| total wall time (budget {budget:.0f} s) | "
        f"{pretraining['wall_s'] + ssl_training['wall_s']:.0f} s | {unet_wall:.0f} s |",
        f"| separator steps/s (steady) | {ssl_training['steps_per_s_steady']} | "
        f"{rest['steps_per_s_steady']} |",
        f"| trainable parameters | {ssl_training['trainable_parameters']} | "
        f"{same_steps['trainable_parameters']} |",
        f"| training loss, last logged | {ssl_training['loss_last']} | {rest['loss_last']} |",
        f"| validation loss, last | {(ssl_training['validation'] or [[None, None]])[-1][1]} | "
        f"{(rest['validation'] or same_steps['validation'] or [[None, None]])[-1][1]} |",
    ]
    gain_lines = "\n".join(
        f"- {k}: {'n/a' if v is None else f'{v:+.2f} dB'}" for k, v in gains.items()
    )
    markdown = f"""# U-Net baseline vs SSL-fused U-Net (same data, same budget, CPU)

Command: `{document["command"]}`

Machine: {common.machine_markdown(info)}

Data:
{common.data_markdown(data, subsets)}

Both arms: U-Net conv_n_filters {filters}, ELU/ELU, T = {args.T}, F = 1024, batch
{args.batch_size}, Adam lr {args.learning_rate}, L1 mask loss, seed {args.seed}, chunks of 8 s
(3 per song). SSL arm: encoder {encoder_architecture(args)}, encoder frozen:
{not args.encoder_trainable}, fusion {args.fusion}, feature layer {args.feature_layer or "last"};
pretraining on the {data["train"]["songs"]} training mixtures ({pretraining["corpus"]}),
units {units} (MFCC, then layer {args.recluster_layer}), masked-prediction accuracy
{pretraining["accuracy"]}.

## Budget

{chr(10).join(budget_rows)}

## SDR

Medians over tracks of each track's median over 1-s windows (upstream's aggregation); average
= mean of the four stems' medians.

{common.sdr_tables(list(scores.items()), reference=unet_wall_name)}

Average-SDR gain of the SSL-fused model:
{gain_lines}
"""
    common.write_markdown(NAME, args, markdown)


if __name__ == "__main__":
    main()
