"""The cluster family on mixtures whose true sources are known (docs/results-cluster.md).

1. Render songs (``spleeter.rendering``, 4 stems); the first ``--train`` songs' mixtures are
   the unlabelled pretraining audio.
2. ``spleeter pretrain`` a small SEANet autoencoder on them (``--steps``), in a child process.
3. Held-out mixtures to split into 3: drums + bass + other of each remaining rendered song,
   and of the MUSDB excerpt (stempeg's), true stems known; plus the MUSDB excerpt's "other"
   stem alone (true parts unknown: the seed's figures only).
4. For k-means, agglomerative (K = 3) and DBSCAN (its own K): the seed's figures (decoded
   clusters: reconstruction MSE, spectral entropy, Hoyer, energy shares), the frame-assignment
   entropy, and SDR / SIR / SAR / SI-SDR after best-permutation matching, for the separated
   (masked) sources and for the decoded clusters; beside them the mixture / 3 baseline and the
   oracle ratio mask (an upper bound for any mask method).

Writes ``WORK/results/cluster_rendered.{json,md}`` and one PNG per separation.

    python tools/experiments/cluster_rendered.py --work /tmp/cluster-exp --steps 60
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile

ROOT = Path(__file__).resolve().parents[2]
STEMS = ("drums", "bass", "other")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", default="/tmp/spleeter-cluster-experiment")
    parser.add_argument("--songs", type=int, default=5)
    parser.add_argument("--train", type=int, default=3)
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    work = Path(args.work)
    sys.path.insert(0, str(ROOT))
    from spleeter.rendering import render_dataset

    data = work / "rendered"
    if not (data / "dataset.json").exists():
        render_dataset(data, n_songs=args.songs, seed=args.seed, duration=args.duration)
    songs = sorted(p for p in data.rglob("mixture.wav"))
    unlabelled = work / "unlabelled"
    unlabelled.mkdir(parents=True, exist_ok=True)
    for k, mixture in enumerate(songs[: args.train]):
        target = unlabelled / f"song{k}.wav"
        if not target.exists():
            target.symlink_to(mixture)
    config = json.loads((ROOT / "spleeter/resources/3stems-cluster.json").read_text())
    config["model_dir"] = str(work / "model")
    config["model"]["params"].update(n_filters=8, dimension=32, ratios=[4, 4, 4, 2], lstm_layers=1)
    config["pretrain"].update(
        steps=args.steps,
        batch_size=4,
        segment_seconds=0.25,
        learning_rate=1e-3,
        beta=0.01,
        beta_warmup_steps=max(1, args.steps // 2),
        save_checkpoints_steps=max(1, args.steps // 2),
        save_summary_steps=10,
    )
    config_path = work / "cluster.json"
    config_path.write_text(json.dumps(config, indent=1))
    command = [sys.executable, "-m", "spleeter", "pretrain", "-p", str(config_path)]
    subprocess.run([*command, "-d", str(unlabelled), "--quiet"], check=True, cwd=ROOT)

    from spleeter.evaluation.cluster_metrics import matched_scores, separation_figures
    from spleeter.evaluation.cluster_plots import plot_cluster_separation
    from spleeter.separation.cluster import ClusterFamily, analyse

    cases = {}
    for song in songs[args.train :]:
        stems = {s: soundfile.read(song.parent / f"{s}.wav", dtype="float32")[0] for s in STEMS}
        cases[f"rendered/{song.parent.name}"] = stems
    cases["musdb/falcon"] = musdb_stems()
    other_only = {"other": cases["musdb/falcon"]["other"]}
    rows = []
    for case, stems in [*cases.items(), ("musdb/falcon other stem", other_only)]:
        mixture = np.sum(list(stems.values()), axis=0)
        known = len(stems) > 1
        if known:
            rows.append({"case": case, "method": "mixture / 3", **baseline(stems, mixture)})
            rows.append({"case": case, "method": "oracle ratio mask", **oracle(stems, mixture)})
        for method in ("kmeans", "agglomerative", "dbscan"):
            family = ClusterFamily(
                dict(config), clusterer=method, clusters=None if method == "dbscan" else 3
            )
            result = analyse(family, mixture)
            figures = separation_figures(
                mixture, result["decoded"], result["sources"], result["frame_counts"]
            )
            row = {"case": case, "method": method, "k": result["fitted"].k, **figures}
            if known:
                named = {f"c{k}": s for k, s in enumerate(result["sources"])}
                decoded = {f"c{k}": s for k, s in enumerate(result["decoded"])}
                row["masked"] = summary(matched_scores(stems, named))
                row["decoded"] = summary(matched_scores(stems, decoded))
            picture = work / "plots" / f"{case.replace('/', '_').replace(' ', '_')}_{method}.png"
            plot_cluster_separation(result, mixture, 44100, picture)
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "hoyer_sparsity"}))
    results = work / "results"
    results.mkdir(exist_ok=True)
    (results / "cluster_rendered.json").write_text(json.dumps(rows, indent=1))
    (results / "cluster_rendered.md").write_text(table(rows))
    print(table(rows))


def musdb_stems() -> dict[str, np.ndarray]:
    import stempeg

    path = Path(stempeg.__file__).parent / "data" / "The Easton Ellises - Falcon 69.stem.mp4"
    order = {"drums": 1, "bass": 2, "other": 3}
    stems = {}
    for name in STEMS:
        raw = subprocess.run(
            ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", f"0:a:{order[name]}"]
            + ["-f", "f32le", "-ar", "44100", "-ac", "2", "pipe:"],
            check=True,
            capture_output=True,
        ).stdout
        stems[name] = np.frombuffer(raw, "<f4").reshape(-1, 2).copy()
    n = min(len(s) for s in stems.values())
    return {name: s[:n] for name, s in stems.items()}


def summary(scores: dict) -> dict:
    keys = ("SDR", "SIR", "SAR", "SI-SDR")
    return {key: float(np.mean([s[key] for s in scores.values()])) for key in keys}


def baseline(stems: dict, mixture: np.ndarray) -> dict:
    from spleeter.evaluation.cluster_metrics import matched_scores

    estimates = {f"c{k}": mixture / len(stems) for k in range(len(stems))}
    return {"masked": summary(matched_scores(stems, estimates))}


def oracle(stems: dict, mixture: np.ndarray) -> dict:
    from spleeter.audio.spectrogram import istft, stft
    from spleeter.evaluation.cluster_metrics import matched_scores

    spectra = {name: stft(s, 4096, 1024) for name, s in stems.items()}
    power = {name: np.abs(s) ** 2 for name, s in spectra.items()}
    total = sum(power.values()) + 1e-10
    mix = stft(mixture, 4096, 1024)
    estimates = {n: istft(mix * p / total, 4096, 1024, len(mixture)) for n, p in power.items()}
    return {"masked": summary(matched_scores(stems, estimates))}


def table(rows: list[dict]) -> str:
    lines = [
        "| case | method | K | recon. MSE | spectral entropy (bits) per cluster | energy % per "
        "cluster (sum) | frame-assign. entropy (bits) | SDR masked | SI-SDR masked | "
        "SDR decoded |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]

    def number(value: object, digits: int = 2) -> str:
        return "" if value is None else f"{value:.{digits}f}"

    for row in rows:
        masked, decoded = row.get("masked") or {}, row.get("decoded") or {}
        entropy = " / ".join(f"{e:.2f}" for e in row.get("spectral_entropy_bits", []))
        shares = row.get("energy_share")
        energy = (
            " / ".join(f"{100 * e:.1f}" for e in shares) + f" ({100 * row['energy_share_sum']:.1f})"
            if shares
            else ""
        )
        lines.append(
            f"| {row['case']} | {row['method']} | {row.get('k', '')} | "
            f"{number(row.get('reconstruction_mse'), 5)} | {entropy} | {energy} | "
            f"{number(row.get('frame_assignment_entropy_bits'))} | {number(masked.get('SDR'))} | "
            f"{number(masked.get('SI-SDR'))} | {number(decoded.get('SDR'))} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
