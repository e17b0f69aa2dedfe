"""Summarise runs of ``cluster_rendered.py`` (one work folder per training seed) into one table.

For each method: its masked SDR and SI-SDR averaged over the held-out rendered songs, and on the
MUSDB excerpt, per run; then the mean and standard deviation over the runs that scored it.

    python tools/experiments/cluster_seeds.py WORK_SEED3 WORK_SEED4 WORK_SEED5
"""

import argparse
import json
from pathlib import Path

import numpy as np

AUTOENCODER_METHODS = ("kmeans", "agglomerative", "dbscan")
"""Rows of ``cluster_rendered.py`` that are the autoencoder's latent-frame clusterings."""


def run_means(document: dict) -> dict[str, dict[str, float]]:
    """``{method: {"rendered SDR": ..., "rendered SI-SDR": ..., "musdb SDR": ...}}`` of a run."""
    collected: dict[str, dict[str, list[float]]] = {}
    for row in document["rows"]:
        masked = row.get("masked")
        if not masked:
            continue
        subset = "rendered" if row["case"].startswith("rendered/") else "musdb"
        method = row["method"]
        if method in AUTOENCODER_METHODS:
            method = f"autoencoder frames, {method}"
        values = collected.setdefault(method, {})
        for key in ("SDR", "SI-SDR"):
            value = masked[key]
            if np.isfinite(value):
                values.setdefault(f"{subset} {key}", []).append(value)
    return {m: {k: float(np.mean(v)) for k, v in values.items()} for m, values in collected.items()}


def summary_table(runs: list[dict[str, dict[str, float]]]) -> str:
    columns = ("rendered SDR", "rendered SI-SDR", "musdb SDR", "musdb SI-SDR")
    methods = list(dict.fromkeys(m for run in runs for m in run))
    lines = [
        "| method | runs | " + " | ".join(columns) + " |",
        "| --- | --- | " + " | ".join("---" for _ in columns) + " |",
    ]
    for method in methods:
        scored = [run[method] for run in runs if method in run]
        cells = []
        for column in columns:
            values = [s[column] for s in scored if column in s]
            if not values:
                cells.append("")
            elif len(values) == 1:
                cells.append(f"{values[0]:.2f}")
            else:
                cells.append(f"{np.mean(values):.2f} +- {np.std(values, ddof=1):.2f}")
        lines.append(f"| {method} | {len(scored)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("works", nargs="+", type=Path)
    args = parser.parse_args()
    runs = []
    for work in args.works:
        document = json.loads((work / "results" / "cluster_rendered.json").read_text())
        runs.append(run_means(document))
    print(summary_table(runs))


if __name__ == "__main__":
    main()
