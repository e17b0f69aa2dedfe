"""The cluster families on mixtures whose true sources are known (docs/results-cluster.md).

1. Render songs (``spleeter.rendering``, 4 stems); of the first ``--train`` songs, the sums
   drums + bass + other are the training audio: unlabelled for the autoencoder, with their
   three stems for the supervised models.
2. Train, each in a child process through the CLI: a small SEANet autoencoder
   (``spleeter pretrain``, ``--steps``); the time-frequency variant, a small deep-clustering
   embedding U-Net (``dc.unet_embedding``, ``spleeter train``, ``--supervised-steps``); and,
   for reference, the supervised 3-stem U-Net of the same size and steps (``unet.unet``).
3. Held-out mixtures to split into 3: drums + bass + other of each remaining rendered song,
   and of the MUSDB excerpt (stempeg's), true stems known; plus the MUSDB excerpt's "other"
   stem alone (true parts unknown: the seed's figures only).
4. Autoencoder, for k-means, agglomerative (K = 3) and DBSCAN (its own K): the seed's figures
   (decoded clusters: reconstruction MSE, spectral entropy, Hoyer, energy shares), the
   frame-assignment entropy, and SDR / SIR / SAR / SI-SDR after best-permutation matching, for
   the separated (masked) sources and for the decoded clusters. Deep clustering (K = 3):
   k-means and agglomerative soft masks, and k-means with the Wiener filter. The U-Net's named
   stems, scored the same way; the mixture / 3 baseline and the oracle ratio mask (an upper
   bound for any mask method).

Writes ``WORK/results/cluster_rendered.{json,md}`` and one PNG per autoencoder separation.

    python tools/experiments/cluster_rendered.py --work /tmp/cluster-exp
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
    parser.add_argument("--songs", type=int, default=14)
    parser.add_argument("--train", type=int, default=10)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--steps", type=int, default=600, help="autoencoder steps")
    parser.add_argument(
        "--supervised-steps", type=int, default=600, help="deep clustering and U-Net steps"
    )
    parser.add_argument("--seed", type=int, default=0, help="the rendering's seed")
    parser.add_argument(
        "--model-seed", type=int, default=3, help="the training seed of every model"
    )
    parser.add_argument(
        "--models",
        default="autoencoder,dc,unet",
        help="which models to train and score (a comma-separated subset of the default)",
    )
    args = parser.parse_args()
    models = set(args.models.split(","))
    work = Path(args.work)
    sys.path.insert(0, str(ROOT))
    from spleeter.rendering import render_dataset

    data = work / "rendered"
    if not (data / "dataset.json").exists():
        render_dataset(data, n_songs=args.songs, seed=args.seed, duration=args.duration)
    songs = sorted(p for p in data.rglob("mixture.wav"))
    train_csv = premixes(work / "premix", songs[: args.train])
    trained = {}
    config = autoencoder_config(work, args.steps, args.model_seed)
    unlabelled = work / "unlabelled"
    unlabelled.mkdir(parents=True, exist_ok=True)
    for song in songs[: args.train]:
        link = unlabelled / f"{song.parent.name}.wav"
        if not link.exists():
            link.symlink_to(work / "premix" / song.parent.name / "mixture.wav")
    if "autoencoder" in models:
        trained["autoencoder"] = run_cli(work, "pretrain", config, unlabelled, args.steps)
    dc_config = supervised_config(work, "dc", train_csv, args.supervised_steps, args.model_seed)
    if "dc" in models:
        trained["deep clustering"] = run_cli(work, "train", dc_config, work, args.supervised_steps)
    unet_config = supervised_config(work, "unet", train_csv, args.supervised_steps, args.model_seed)
    if "unet" in models:
        trained["U-Net"] = run_cli(work, "train", unet_config, work, args.supervised_steps)
    print(json.dumps(trained))

    from spleeter.evaluation.cluster_metrics import matched_scores, separation_figures
    from spleeter.evaluation.cluster_plots import plot_cluster_separation
    from spleeter.separation.cluster import ClusterFamily, analyse
    from spleeter.separator import Separator

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
        for method in ("kmeans", "agglomerative", "dbscan") if "autoencoder" in models else ():
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
        if not known:
            continue
        for label, options in DC_METHODS.items() if "dc" in models else ():
            separator = Separator(str(dc_config), multiprocess=False, clusters=3, **options)
            estimates = separator.separate(mixture)
            row = {"case": case, "method": label, "k": len(estimates)}
            row["masked"] = summary(matched_scores(stems, estimates))
            rows.append(row)
            print(json.dumps(row))
        if "unet" in models:
            estimates = Separator(str(unet_config), multiprocess=False).separate(mixture)
            row = {"case": case, "method": "supervised U-Net (reference)", "k": len(estimates)}
            row["masked"] = summary(matched_scores(stems, estimates))
            rows.append(row)
            print(json.dumps(row))
    results = work / "results"
    results.mkdir(exist_ok=True)
    document = {"trained": trained, "rows": rows}
    (results / "cluster_rendered.json").write_text(json.dumps(document, indent=1))
    (results / "cluster_rendered.md").write_text(training_table(trained) + "\n" + table(rows))
    print(training_table(trained) + "\n" + table(rows))


DC_METHODS = {
    "deep clustering, kmeans": {"clusterer": "kmeans"},
    "deep clustering, agglomerative": {"clusterer": "agglomerative"},
    "deep clustering, kmeans + Wiener": {"clusterer": "kmeans", "MWF": True},
}
"""The time-frequency variant's separations (``Separator`` options)."""

SMALL_FILTERS = [4, 8, 16, 32, 64, 128]
"""The supervised models' U-Net size (configs/rendered/4stems-small.json's)."""


def premixes(root: Path, songs: list[Path]) -> Path:
    """Each training song's drums + bass + other as ``root/<song>/mixture.wav`` beside links
    to its stems, and the upstream-format CSV of them (paths relative to ``root.parent``)."""
    lines = ["mix_path," + ",".join(f"{s}_path" for s in STEMS) + ",duration"]
    for song in songs:
        folder = root / song.parent.name
        folder.mkdir(parents=True, exist_ok=True)
        stems = [soundfile.read(song.parent / f"{s}.wav", dtype="float32")[0] for s in STEMS]
        mixture = folder / "mixture.wav"
        if not mixture.exists():
            soundfile.write(mixture, np.sum(stems, axis=0), 44100, subtype="FLOAT")
        for stem in STEMS:
            link = folder / f"{stem}.wav"
            if not link.exists():
                link.symlink_to(song.parent / f"{stem}.wav")
        relative = [f"{root.name}/{folder.name}/{n}.wav" for n in ("mixture", *STEMS)]
        lines.append(",".join(relative) + f",{len(stems[0]) / 44100:.3f}")
    csv = root.parent / "train3.csv"
    csv.write_text("\n".join(lines) + "\n")
    return csv


def autoencoder_config(work: Path, steps: int, seed: int) -> dict:
    config = json.loads((ROOT / "spleeter/resources/3stems-cluster.json").read_text())
    config["model_dir"] = str(work / "model")
    config["random_seed"] = seed
    config["model"]["params"].update(n_filters=8, dimension=32, ratios=[4, 4, 4, 2], lstm_layers=1)
    config["pretrain"].update(
        steps=steps,
        batch_size=4,
        segment_seconds=0.25,
        learning_rate=1e-3,
        beta=0.01,
        beta_warmup_steps=max(1, steps // 2),
        save_checkpoints_steps=max(1, steps // 2),
        save_summary_steps=10,
    )
    return config


def supervised_config(work: Path, kind: str, train_csv: Path, steps: int, seed: int) -> Path:
    """The deep-clustering (``dc``) or U-Net (``unet``) 3-stem configuration, written."""
    base = "4stems-dc" if kind == "dc" else "4stems"
    config = json.loads((ROOT / f"spleeter/resources/{base}.json").read_text())
    config.pop("validation_csv", None)
    config.pop("model_unpublished", None)
    config.update(
        train_csv=str(train_csv),
        model_dir=str(work / f"model-{kind}"),
        instrument_list=list(STEMS),
        T=128,
        F=1024,
        batch_size=8,
        learning_rate=1e-3,
        train_max_steps=steps,
        save_checkpoints_steps=steps,
        save_summary_steps=10,
        chunk_duration=10.0,
        n_chunks_per_song=2,
        training_cache=str(work / "cache" / kind),
        random_seed=seed,
    )
    config["model"]["params"]["conv_n_filters"] = SMALL_FILTERS
    if kind == "dc":
        config["cluster"].update(clusters=3)
    path = work / f"{kind}.json"
    path.write_text(json.dumps(config, indent=1))
    return path


def run_cli(work: Path, command: str, config: dict | Path, data: Path, steps: int) -> dict:
    """Train through the CLI unless done; the wall time and steps of the run."""
    import time

    if isinstance(config, dict):
        path = work / "cluster.json"
        path.write_text(json.dumps(config, indent=1))
        config = path
    model_dir = Path(json.loads(Path(config).read_text())["model_dir"])
    marker = model_dir / "experiment-training.json"
    if marker.exists():
        return json.loads(marker.read_text())
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "spleeter", command, "-p", str(config), "-d", str(data), "--quiet"],
        check=True,
        cwd=ROOT,
    )
    description = json.loads((model_dir / "model.json").read_text())
    done = {
        "command": command,
        "steps": steps,
        "seconds": round(time.monotonic() - started, 1),
        "parameters": description.get("parameters"),
        "model_type": description.get("model_type"),
    }
    marker.write_text(json.dumps(done))
    return done


def training_table(trained: dict) -> str:
    lines = ["| model | trained by | steps | wall time (s) |", "| --- | --- | --- | --- |"]
    for name, run in trained.items():
        lines.append(
            f"| {name} ({run['model_type']}) | spleeter {run['command']} | {run['steps']} | "
            f"{run['seconds']} |"
        )
    return "\n".join(lines) + "\n"


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
