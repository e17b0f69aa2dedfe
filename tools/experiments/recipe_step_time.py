#!/usr/bin/env python
"""Seconds per training step of each MUSDB recipe in ``configs/musdb/`` and of the cluster
model's autoencoder (``spleeter:4stems-cluster``, trained by ``spleeter pretrain``), on this
machine: each trains ``--steps`` steps on rendered songs with the recipe's own network, T, F and
batch (only the CSVs point at the rendered data; the SSL recipe's encoder is randomly
initialised, which costs the same as a pretrained one), in float32 and in bfloat16 mixed
precision, timed from the first progress line at or after ``--warmup`` steps to the last
(``--verbose`` logs one every 10 steps; tracing and the first pass over the data excluded).
Its songs are rendered for it (20 songs of 15-30 s): a recipe's T=512 frames need 11.9 s.

    python tools/experiments/recipe_step_time.py --steps 30 --warmup 10

Writes ``WORK/results/recipe_step_time.{json,md}``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

from spleeter.utils.configuration import load_configuration  # noqa: E402

NAME = "recipe_step_time"
RECIPES = ["configs/musdb/2stems.json", "configs/musdb/4stems.json",
           "configs/musdb/4stems-transformer.json", "configs/musdb/4stems-ssl.json",
           "spleeter:4stems-cluster"]  # fmt: skip
PRECISIONS = ("float32", "bfloat16")  # bfloat16: `--mixed-precision-dtype bfloat16`


def recipe_config(recipe: str, rendered: Path, run_dir: Path, cache: Path) -> dict:
    config = load_configuration(recipe if recipe.startswith("spleeter:") else
                                str(common.REPO / recipe))  # fmt: skip
    config.update(
        train_csv=str(rendered / "train.csv"), validation_csv=str(rendered / "validation.csv"),
        model_dir=str(run_dir / "model"), training_cache=str(cache / "training"),
        validation_cache=str(cache / "validation"), throttle_secs=100_000,
        save_summary_steps=1, save_checkpoints_steps=100_000, n_chunks_per_song=2,
    )  # fmt: skip
    if config["model"]["type"] == "unet.ssl_unet":
        config["model"]["params"]["encoder_dir"] = None
    if "accompaniment" in config["instrument_list"]:  # rendered songs have no accompaniment
        config["instrument_list"] = ["vocals", "drums"]
    return config


def main() -> None:
    parser = common.argument_parser(__doc__, budget_minutes=10.0,
                                    budget_help="wall-clock limit per recipe")  # fmt: skip
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=10)
    # The MUSDB recipes train on T=512 frames (11.9 s): the shared 10-30 s songs are too short.
    parser.set_defaults(duration="15-30", songs=20)
    args = parser.parse_args()
    common.apply_smoke(args)
    info = common.machine()
    rendered, _, subsets, _ = common.prepare_data(args)
    rows = {}
    for recipe in RECIPES:
        tag = Path(recipe).stem if not recipe.startswith("spleeter:") else recipe.split(":")[1]
        row = rows[recipe] = {}
        for precision in PRECISIONS:
            run_dir = args.work / "runs" / NAME / tag / precision
            config = recipe_config(recipe, rendered, run_dir, args.work / "cache" / NAME / tag)
            flags = () if precision == "float32" else ("--mixed-precision-dtype", precision)
            pretraining = config["model"]["type"] == "seanet.autoencoder"
            if pretraining:
                config["pretrain"].update(save_summary_steps=1, save_checkpoints_steps=100_000)
            result = common.train(
                run_dir, config, rendered / "train" if pretraining else rendered,
                steps=args.steps, budget_s=args.budget_minutes * 60,
                rate_after_step=args.warmup, verbose=True, flags=flags,
                subcommand="pretrain" if pretraining else "train",
            )  # fmt: skip
            rate = result["steps_per_s_steady"]
            batch = config["pretrain"].get("batch_size") if pretraining else config["batch_size"]
            row.update(T=config["T"], F=config["F"], batch_size=batch,
                       parameters=result["trainable_parameters"])  # fmt: skip
            row[precision] = {"seconds_per_step": None if not rate else round(1 / rate, 2),
                              "training": result}  # fmt: skip
            common.log(f"{recipe} ({precision}): {row[precision]['seconds_per_step']} s/step")
    common.write_results(NAME, args, info, rendered, subsets, recipes=rows)
    table = ["| recipe | T | F | batch | trainable parameters | s/step float32 | "
             "s/step bfloat16 mixed | speed-up |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for recipe, row in rows.items():
        f32, bf16 = (row[p]["seconds_per_step"] for p in PRECISIONS)
        ratio = f"{f32 / bf16:.2f}x" if f32 and bf16 else "-"
        table.append(f"| `{recipe}` | {row['T']} | {row['F']} | {row['batch_size'] or '-'} | "
                     f"{row['parameters'] or '-'} | {f32} | {bf16} | {ratio} |")  # fmt: skip
    markdown = f"""# Seconds per training step of the recipes

Command: `{common.command_line()}`

Machine: {common.machine_markdown(info)}

{chr(10).join(table)}
"""
    common.write_markdown(NAME, args, markdown)


if __name__ == "__main__":
    main()
