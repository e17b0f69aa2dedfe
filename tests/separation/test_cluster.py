"""The cluster family through the public surface: ``spleeter pretrain`` trains a tiny SEANet
autoencoder on real audio (the MUSDB excerpt), ``spleeter separate`` / ``Separator`` split
tracks into clusters, ``--split`` splits one stem of a mask model."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
from typer.testing import CliRunner

from spleeter import SpleeterError
from spleeter.__main__ import spleeter
from spleeter.utils.configuration import load_configuration

SEED_STEPS = 4


def tiny_cluster_config(model_dir: Path, **pretrain) -> dict:
    config = load_configuration("spleeter:3stems-cluster")
    config["model_dir"] = str(model_dir)
    config["model"]["params"].update(n_filters=4, dimension=8, ratios=[4, 4, 2], lstm_layers=1)
    config["cluster"]["max_frames"] = 1500
    settings = dict(
        steps=SEED_STEPS,
        batch_size=2,
        segment_seconds=0.1,
        save_checkpoints_steps=2,
        spectral_resolutions=[256, 512],
        learning_rate=3e-3,
        beta_warmup_steps=2,
    )
    config["pretrain"].update({**settings, **pretrain})
    return config


def write_json(path: Path, config: dict) -> str:
    path.write_text(json.dumps(config, indent=1))
    return str(path)


def run(*args: str):
    return CliRunner().invoke(spleeter, list(args))


def checkpoint_tensors(prefix: str) -> dict[str, np.ndarray]:
    import tensorflow as tf

    reader = tf.train.load_checkpoint(prefix)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


@pytest.fixture(scope="session")
def audio_dir(tmp_path_factory, musdb_stems) -> Path:
    directory = tmp_path_factory.mktemp("unlabelled")
    soundfile.write(directory / "falcon.wav", musdb_stems["mixture"], 44100, subtype="PCM_16")
    return directory


@pytest.fixture(scope="session")
def cluster_model(tmp_path_factory, audio_dir) -> str:
    """A tiny autoencoder pretrained by the CLI (``SEED_STEPS`` steps); its configuration."""
    root = tmp_path_factory.mktemp("cluster")
    path = write_json(root / "cluster.json", tiny_cluster_config(root / "model"))
    result = run("pretrain", "-p", path, "-d", str(audio_dir))
    assert result.exit_code == 0, result.output
    return path


def test_pretrain_writes_a_described_autoencoder_folder(cluster_model):
    model_dir = Path(json.loads(Path(cluster_model).read_text())["model_dir"])
    description = json.loads((model_dir / "model.json").read_text())
    assert description["model_type"] == "seanet.autoencoder"
    assert (description["family"], description["task"]) == ("cluster", "reconstruction")
    assert description["checkpoint"]["step"] == SEED_STEPS
    # The folder alone is a configuration: nothing to do again, and it separates (below).
    result = run("pretrain", "-p", str(model_dir), "-d", str(model_dir))
    assert result.exit_code == 0 and "already trained" in result.output


@pytest.mark.parametrize("mixed", [None, "bfloat16"])
def test_pretrain_loss_decreases(tmp_path, audio_dir, mixed):
    """Also in bfloat16 mixed precision (float32 weights): 12 steps lower the loss."""
    from spleeter.audio.adapter import AudioAdapter
    from spleeter.ssl import run_pretraining

    config = tiny_cluster_config(
        tmp_path / "model", steps=12, save_checkpoints_steps=12, learning_rate=1e-2
    )
    loop = run_pretraining(
        config, str(audio_dir), AudioAdapter.default(), quiet=True, mixed_precision=mixed
    )
    assert len(loop.history) == 12 and all(np.isfinite(loop.history))
    assert {w.dtype for w in loop.model.weights} == {"float32"}
    assert loop.model.layers[-1].compute_dtype == (mixed or "float32")
    import tensorflow as tf

    from spleeter.model.checkpoint import load_checkpoint

    batch = loop.task.examples.batch(0)  # one fixed batch, before and after training
    batch = tf.nest.map_structure(tf.convert_to_tensor, batch)

    def loss() -> float:
        return float(loop.task.losses(loop.model, batch, training=False)["loss"])

    trained = loss()
    load_checkpoint(loop.model, str(tmp_path / "model" / "model.ckpt-0"))
    initial = loss()
    assert trained < 0.97 * initial, (trained, initial, loop.history)


@pytest.mark.slow
def test_pretrain_resumes_exactly(tmp_path, audio_dir):
    """2 steps, then on to 4, give the checkpoint of 4 uninterrupted steps."""
    results = {}
    for name, stops in (("straight", [4]), ("resumed", [2, 4])):
        root = tmp_path / name
        path = write_json(tmp_path / f"{name}.json", tiny_cluster_config(root))
        for stop in stops:
            result = run("pretrain", "-p", path, "-d", str(audio_dir), "--max-steps", str(stop))
            assert result.exit_code == 0, result.output
        results[name] = checkpoint_tensors(str(root / "model.ckpt-4"))
    assert "Resuming from" in result.output
    assert sorted(results["straight"]) == sorted(results["resumed"])
    for name, value in results["straight"].items():
        np.testing.assert_array_equal(value, results["resumed"][name], err_msg=name)


def test_separate_writes_k_files_that_sum_to_the_mixture(cluster_model, mixture_wav, tmp_path):
    result = run("separate", "-p", cluster_model, "-o", str(tmp_path), str(mixture_wav))
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (tmp_path / "falcon").iterdir())
    assert names == ["source_1.wav", "source_2.wav", "source_3.wav"]
    mixture, _ = soundfile.read(mixture_wav, dtype="float32")
    parts = [soundfile.read(tmp_path / "falcon" / n, dtype="float32")[0] for n in names]
    assert all(part.shape == mixture.shape for part in parts)
    # Ratio masks sum to one: the sources sum to the mixture, up to 3 16-bit roundings.
    assert np.max(np.abs(sum(parts) - mixture)) < 4 / 32768


def test_deterministic_for_a_fixed_seed_and_k_estimated(cluster_model, musdb_stems):
    from spleeter.separator import Separator

    mixture = musdb_stems["mixture"]
    first = Separator(cluster_model, clusterer="kmeans", clusters=3).separate(mixture)
    again = Separator(cluster_model, clusterer="kmeans", clusters=3).separate(mixture)
    assert list(first) == ["source_1", "source_2", "source_3"]
    for name in first:
        np.testing.assert_array_equal(first[name], again[name])
    estimated = Separator(cluster_model, clusterer="agglomerative", clusters=0)
    assert estimated.instruments == []  # decided per track
    sources = estimated.separate(mixture)
    assert 2 <= len(sources) <= 5
    assert np.max(np.abs(sum(sources.values()) - mixture)) < 1e-4


@pytest.mark.parametrize("groups", [2, 3, 4, 5])
def test_eigengap_finds_the_number_of_separate_groups(groups):
    from spleeter.separation.clustering import ClusterSettings, FrameSample, fit_clusters

    rng = np.random.default_rng(groups)
    centres = rng.normal(0, 6, (groups, 16))
    frames = np.concatenate([centre + rng.normal(0, 1, (600, 16)) for centre in centres])
    sample = FrameSample(3000, seed=0)
    sample.add(frames, np.ones(len(frames)))
    settings = ClusterSettings(clusters=None, k_estimate="eigengap", max_clusters=6)
    fitted = fit_clusters(sample, settings)
    assert fitted.k == groups
    # Every group is one cluster: each cluster holds the frames of exactly one centre.
    labels = fitted.assign(frames)
    for group in range(groups):
        assert len(np.unique(labels[group * 600 : (group + 1) * 600])) == 1
    assert len(np.unique(labels)) == groups


def test_eigengap_on_a_real_track_and_a_bad_estimate_name(
    cluster_model, musdb_stems, mixture_wav, tmp_path
):
    from spleeter.separator import Separator

    config = json.loads(Path(cluster_model).read_text())
    config["cluster"]["k_estimate"] = "eigengap"
    path = write_json(tmp_path / "eigengap.json", config)
    mixture = musdb_stems["mixture"][: 10 * 44100]
    sources = Separator(path, clusters=0).separate(mixture)
    again = Separator(path, clusters=0).separate(mixture)
    assert 2 <= len(sources) <= 5 and list(sources) == list(again)
    for name in sources:
        np.testing.assert_array_equal(sources[name], again[name])
    assert np.max(np.abs(sum(sources.values()) - mixture)) < 1e-4
    config["cluster"]["k_estimate"] = "gap"
    bad = write_json(tmp_path / "bad.json", config)
    result = run("separate", "-p", bad, "-o", str(tmp_path / "out"), str(mixture_wav))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "Unknown cluster.k_estimate 'gap'" in result.output
    assert not (tmp_path / "out").exists()


def test_evaluate_matches_unnamed_sources_to_the_stems(cluster_model, musdb_stems, tmp_path):
    from itertools import permutations

    from spleeter.evaluation.cluster_metrics import si_sdr

    stems = ("vocals", "drums", "bass", "other")
    root, out = tmp_path / "musdb", tmp_path / "out"
    for song, start in (("Song A", 0.0), ("Song B", 4.0)):
        folder = root / "test" / song
        folder.mkdir(parents=True)
        begin = int(start * 44100)
        for name in ("mixture", *stems):
            part = musdb_stems[name][begin : begin + 3 * 44100]
            soundfile.write(folder / f"{name}.wav", part, 44100, subtype="PCM_16")
    result = run(
        "evaluate", "-p", cluster_model, "--mus_dir", str(root), "-o", str(out),
        "--metrics", "fast", "--jobs", "1",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "matched to its stems (vocals, drums, bass, other)" in result.output
    for song in ("Song A", "Song B"):
        audio = out / "audio" / "test" / song
        assert sorted(p.name for p in audio.iterdir()) == [f"source_{k}.wav" for k in (1, 2, 3)]
        record = json.loads((out / "metrics" / "matching" / f"{song}.json").read_text())
        matching = record["matching"]
        assert set(matching) == set(stems) and list(matching.values()).count(None) == 1
        # The matching maximises the summed SI-SDR over every assignment of 3 sources to 4 stems.
        refs = {n: soundfile.read(root / "test" / song / f"{n}.wav")[0] for n in stems}
        ests = {n: soundfile.read(audio / f"{n}.wav")[0] for n in record["sources"]}
        table = {(r, e): si_sdr(refs[r], ests[e]) for r in stems for e in ests}
        best = max(
            sum(table[r, e] for r, e in zip(chosen, ests, strict=True))
            for chosen in permutations(stems, 3)
        )
        found = sum(table[r, e] for r, e in matching.items() if e is not None)
        assert found == pytest.approx(best)
        document = json.loads(
            (out / "metrics" / "fast_bss_eval" / "test" / f"{song}.json").read_text()
        )
        targets = {t["name"]: t["frames"] for t in document["targets"]}
        assert set(targets) == set(stems)
        for stem, estimate in matching.items():
            values = [frame["metrics"]["SI-SDR"] for frame in targets[stem]]
            if estimate is None:
                assert all(v is None or np.isnan(v) for v in values)  # silence: no score
            else:
                assert any(v is not None and np.isfinite(v) for v in values)
    assert (out / "metrics" / "summary.json").is_file()
    assert (out / "metrics" / "plots" / "spectrograms_Song A.png").is_file()


@pytest.mark.slow
def test_dbscan_gives_its_own_count_or_a_clear_message(cluster_model, musdb_stems, tmp_path):
    from spleeter.separator import Separator

    mixture = musdb_stems["mixture"][:88200]
    sources = Separator(cluster_model, clusterer="dbscan").separate(mixture)
    assert 1 <= len(sources) <= 5
    assert np.max(np.abs(sum(sources.values()) - mixture)) < 1e-4
    config = json.loads(Path(cluster_model).read_text())
    config["cluster"].update(dbscan_eps=1e-9, dbscan_min_samples=50)
    noise_only = write_json(tmp_path / "noise.json", config)
    with pytest.raises(SpleeterError, match="DBSCAN found no cluster"):
        Separator(noise_only, clusterer="dbscan").separate(mixture)


def test_bad_inputs_give_a_message_or_a_sensible_result(cluster_model, tmp_path):
    from spleeter.separator import Separator

    separator = Separator(cluster_model, clusters=2)
    silence = separator.separate(np.zeros((44100, 2), np.float32))
    assert list(silence) == ["source_1", "source_2"]
    assert all(np.all(part == 0) for part in silence.values())
    short = np.random.default_rng(0).uniform(-0.5, 0.5, (100, 2)).astype(np.float32)
    parts = separator.separate(short)
    assert all(part.shape == (100, 2) for part in parts.values())
    assert np.max(np.abs(sum(parts.values()) - short)) < 1e-4
    wav = tmp_path / "short.wav"
    soundfile.write(wav, short, 44100, subtype="FLOAT")
    for clusters, message in (("1000", "more than the track's"), ("100000", "cluster.max_frames")):
        result = run(
            "separate", "-p", cluster_model, "--clusters", clusters, "-o", str(tmp_path), str(wav)
        )
        assert result.exit_code == 1
        assert message in result.output and "Traceback" not in result.output
        assert not (tmp_path / "short").exists()  # nothing half-written
    result = run("separate", "-p", cluster_model, "--clusterer", "spectral", str(wav))
    assert result.exit_code == 1 and "Unknown clusterer" in result.output


@pytest.mark.slow
def test_split_one_stem_of_a_mask_model(tiny_4stems, cluster_model, mixture_wav, tmp_path):
    result = run(
        "separate",
        "-p",
        tiny_4stems,
        "--split",
        "other=2",
        "--split-model",
        cluster_model,
        "-o",
        str(tmp_path),
        str(mixture_wav),
    )
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (tmp_path / "falcon").iterdir())
    assert names == ["bass.wav", "drums.wav", "other_1.wav", "other_2.wav", "vocals.wav"]
    result = run("separate", "-p", tiny_4stems, "--split", "piano=2", str(mixture_wav))
    assert result.exit_code == 1 and "has no stem piano" in result.output
    result = run("separate", "-p", tiny_4stems, "--clusterer", "kmeans", str(mixture_wav))
    assert result.exit_code == 1 and "does not apply" in result.output


@pytest.mark.slow
def test_onnx_export_of_encoder_and_decoder_agrees_with_tensorflow(tmp_path, audio_dir):
    import onnxruntime

    from spleeter.model.autoencoder import LoadedAutoencoder

    config = tiny_cluster_config(tmp_path / "model", steps=1, save_checkpoints_steps=1)
    path = write_json(tmp_path / "cluster.json", config)
    result = run("pretrain", "-p", path, "-d", str(audio_dir), "--export")
    assert result.exit_code == 0, result.output
    model = LoadedAutoencoder(config, str(tmp_path / "model"))
    audio = np.random.default_rng(1).uniform(-0.5, 0.5, (1, 32 * 200, 2)).astype(np.float32)
    latent = model.encode(audio[0])[None]
    sessions = {
        name: onnxruntime.InferenceSession(str(tmp_path / "model" / f"{name}.onnx"))
        for name in ("encoder", "decoder")
    }
    (onnx_latent,) = sessions["encoder"].run(None, {"audio": audio})
    (onnx_audio,) = sessions["decoder"].run(None, {"latent": latent})
    assert np.max(np.abs(onnx_latent - latent)) < 1e-4
    assert np.max(np.abs(onnx_audio - model.decode(latent))) < 1e-4
