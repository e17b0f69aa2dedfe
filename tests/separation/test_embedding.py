"""The embedding family (deep clustering, the cluster family's time-frequency variant) through
the public surface: ``spleeter train`` trains a tiny ``dc.unet_embedding`` on the stems of the
real MUSDB excerpt, ``spleeter separate`` / ``Separator`` split it by clustering its bins,
``spleeter evaluate`` matches the clusters to the stems, ONNX Runtime agrees with TensorFlow."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
from modelkit import read_scalars
from typer.testing import CliRunner

from spleeter.__main__ import spleeter
from spleeter.utils.configuration import load_configuration

STEMS = ("vocals", "drums", "bass")
"""The excerpt's stems the tests mix and separate (its "other" left out: 150 steps of a tiny
network tell these three apart, not four)."""
STEPS = 150
TINY_FILTERS = [4, 8, 16, 16, 32, 32]


def run(*args: str):
    return CliRunner().invoke(spleeter, list(args))


def write_stem_dataset(root: Path, stems: dict[str, np.ndarray]) -> Path:
    """The excerpt's :data:`STEMS` and their exact sum as the mixture; the CSV naming them."""
    root.mkdir(parents=True, exist_ok=True)
    mixture = np.sum([stems[name] for name in STEMS], axis=0)
    for name, data in {"mix": mixture, **{s: stems[s] for s in STEMS}}.items():
        soundfile.write(root / f"{name}.wav", data, 44100, subtype="FLOAT")
    csv = root / "train.csv"
    header = "mix_path," + ",".join(f"{s}_path" for s in STEMS) + ",duration"
    row = "mix.wav," + ",".join(f"{s}.wav" for s in STEMS) + f",{len(mixture) / 44100}"
    csv.write_text(f"{header}\n{row}\n")
    return csv


def tiny_dc_config(root: Path, csv: Path, **changes) -> dict:
    config = load_configuration("spleeter:4stems-dc")
    config.pop("validation_csv")
    config.update(
        train_csv=str(csv),
        model_dir=str(root / "model"),
        T=64,
        F=256,
        batch_size=4,
        learning_rate=3e-3,
        train_max_steps=STEPS,
        save_checkpoints_steps=STEPS,
        save_summary_steps=10,
        chunk_duration=5.0,
        training_cache=str(root / "cache"),
        instrument_list=list(STEMS),
        **changes,
    )
    config["model"]["params"].update(conv_n_filters=TINY_FILTERS, embedding_features=8)
    config["cluster"].update(max_frames=4000, clusters=len(STEMS))
    return config


@pytest.fixture(scope="module")
def dc_model(tmp_path_factory, musdb_stems) -> str:
    """A tiny deep clustering network trained by the CLI for ``STEPS`` steps on the excerpt's
    stems; its configuration file."""
    root = tmp_path_factory.mktemp("dc")
    csv = write_stem_dataset(root / "data", musdb_stems)
    path = root / "dc.json"
    path.write_text(json.dumps(tiny_dc_config(root, csv), indent=1))
    result = run("train", "-p", str(path), "-d", str(root / "data"), "-q")
    assert result.exit_code == 0, result.output
    return str(path)


def sum_of_stems(stems: dict[str, np.ndarray]) -> np.ndarray:
    return np.sum([stems[name] for name in STEMS], axis=0)


def test_deep_clustering_loss_is_the_affinity_distance():
    """The loss computed without a bins x bins matrix equals ``|VV^T - YY^T|^2`` over the
    sounding bins, divided by their squared count; embeddings that are the labels give 0."""
    from spleeter.training.objectives import deep_clustering_loss

    rng = np.random.default_rng(1)
    batch, frames, bins, dimension = 2, 4, 8, 5
    targets = [np.abs(rng.normal(size=(batch, frames, bins, 2))).astype("float32") for _ in STEMS]
    targets[0][1] *= 10  # the first stem dominates most bins of the second example
    mixture = np.sum(targets, axis=0)
    mixture[0, 0] *= 10 ** (-30 / 20)  # 30 dB down: still sounding
    mixture[0, 1] = 0  # silent bins carry no label
    embedding = rng.normal(size=(batch, frames, bins, dimension))
    embedding /= np.linalg.norm(embedding, axis=-1, keepdims=True)
    expected = []
    for b in range(batch):
        power = np.stack([np.sum(t[b] ** 2, axis=-1) for t in targets], axis=-1)
        labels = np.eye(len(STEMS))[power.reshape(-1, len(STEMS)).argmax(axis=1)]
        energy = np.sum(mixture[b] ** 2, axis=-1).reshape(-1)
        weight = (energy > energy.max() * 1e-4).astype(float)
        v = embedding[b].reshape(-1, dimension)
        difference = (v @ v.T - labels @ labels.T) * np.outer(weight, weight)
        expected.append(np.sum(difference**2) / weight.sum() ** 2)
    assert sum(np.sum(mixture[0] ** 2, -1).reshape(-1) == 0) == bins  # the silent frame
    loss = float(deep_clustering_loss(embedding.astype("float32"), targets, mixture))
    np.testing.assert_allclose(loss, np.mean(expected), rtol=1e-5)
    # Embeddings equal to the one-hot labels (zero-padded to D = 5) are a perfect clustering.
    power = np.stack([np.sum(t**2, axis=-1) for t in targets], axis=-1)
    perfect = np.eye(dimension)[power.argmax(axis=-1)].astype("float32")
    assert float(deep_clustering_loss(perfect, targets, mixture)) < 1e-6


def test_training_lowers_the_loss_and_describes_the_folder(dc_model):
    model_dir = Path(json.loads(Path(dc_model).read_text())["model_dir"])
    losses = [value for _, value in read_scalars(model_dir)["loss"]]
    assert len(losses) == STEPS // 10
    assert losses[-1] < 0.6 * losses[0], losses
    description = json.loads((model_dir / "model.json").read_text())
    assert description["model_type"] == "dc.unet_embedding"
    assert (description["family"], description["task"]) == ("embedding", "separation")
    assert description["sources"] == ["source_1", "source_2", "source_3"]


def test_separation_sums_to_the_mixture_and_beats_the_even_split(dc_model, musdb_stems):
    """Soft masks sum to one in every bin, so the sources add up to the mixture; trained on
    this excerpt's stems, the clusters matched to them score well above giving each stem a
    third of the mixture."""
    from spleeter.evaluation.cluster_metrics import matched_scores
    from spleeter.separator import Separator

    mixture = sum_of_stems(musdb_stems)
    sources = Separator(dc_model, multiprocess=False).separate(mixture)
    assert list(sources) == ["source_1", "source_2", "source_3"]
    assert all(s.shape == mixture.shape and s.dtype == np.float32 for s in sources.values())
    np.testing.assert_allclose(np.sum(list(sources.values()), axis=0), mixture, atol=1e-4)
    energies = [float(np.sum(s**2)) for s in sources.values()]
    assert all(e > 0 for e in energies)
    stems = {name: musdb_stems[name] for name in STEMS}
    found = matched_scores(stems, sources)
    even = matched_scores(stems, {f"c{k}": mixture / 3 for k in range(3)})
    si_sdr = np.mean([found[s]["SI-SDR"] for s in STEMS])
    baseline = np.mean([even[s]["SI-SDR"] for s in STEMS])
    # Measured: 2.0 dB against -3.0 dB.
    assert si_sdr > baseline + 3, (si_sdr, baseline)
    # The same seed gives the same sources; --clusters and the clusterer change them.
    again = Separator(dc_model, multiprocess=False).separate(mixture)
    for name in sources:
        np.testing.assert_array_equal(again[name], sources[name])
    two = Separator(dc_model, multiprocess=False, clusters=2, clusterer="agglomerative")
    halves = two.separate(mixture)
    assert list(halves) == ["source_1", "source_2"]
    np.testing.assert_allclose(halves["source_1"] + halves["source_2"], mixture, atol=1e-4)


def test_silence_and_segment_size_change_nothing(dc_model, musdb_stems):
    """Silent blocks add no bin to the clustering sample, and the sample and the masks do not
    depend on the segment size: the excerpt followed by 10 s of silence, cut into one-block
    segments, gives the excerpt's sources and then silence."""
    from spleeter.separator import Separator

    mixture = sum_of_stems(musdb_stems)
    whole = Separator(dc_model, multiprocess=False, segment_blocks=None).separate(mixture)
    longer = np.concatenate([mixture, np.zeros((441000, 2), np.float32)])
    pieces = Separator(dc_model, multiprocess=False, segment_blocks=1).separate(longer)
    assert list(pieces) == list(whole)
    for name in whole:
        np.testing.assert_allclose(pieces[name][: len(mixture)], whole[name], atol=1e-5)
        assert np.abs(pieces[name][len(mixture) + 44100 :]).max() == 0


def test_cli_separates_with_the_wiener_filter_and_evaluates_by_matching(
    dc_model, musdb_stems, tmp_path
):
    mixture = sum_of_stems(musdb_stems)
    wav = tmp_path / "falcon.wav"
    soundfile.write(wav, mixture, 44100, subtype="FLOAT")
    out = tmp_path / "out"
    result = run("separate", "-p", dc_model, "-o", str(out), "--mwf", "-c", "wav", str(wav))
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in (out / "falcon").iterdir())
    assert written == [f"source_{k}.wav" for k in range(1, 4)]
    filtered = [soundfile.read(out / "falcon" / n, dtype="float32")[0] for n in written]
    assert all(f.shape == mixture.shape and np.isfinite(f).all() for f in filtered)
    plain = separated(dc_model, mixture)
    # The Wiener filter changes the soft-masked sources, but keeps each near its cluster.
    changes = [np.abs(f - p).max() for f, p in zip(filtered, plain.values(), strict=True)]
    assert max(changes) > 1e-3
    for f, p in zip(filtered, plain.values(), strict=True):
        assert np.corrcoef(f.ravel(), p.ravel())[0, 1] > 0.8
    # spleeter evaluate on a MUSDB-layout folder matches the unnamed sources to the stems.
    folder = tmp_path / "musdb" / "test" / "Song A"
    folder.mkdir(parents=True)
    for name in STEMS:
        soundfile.write(folder / f"{name}.wav", musdb_stems[name], 44100, subtype="FLOAT")
    soundfile.write(folder / "mixture.wav", mixture, 44100, subtype="FLOAT")
    evaluation = tmp_path / "evaluation"
    result = run(
        "evaluate", "-p", dc_model, "--mus_dir", str(tmp_path / "musdb"), "-o", str(evaluation),
        "--metrics", "fast", "--jobs", "1",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    record = json.loads((evaluation / "metrics" / "matching" / "Song A.json").read_text())
    assert set(record["matching"]) == set(STEMS)
    assert sorted(record["matching"].values()) == [f"source_{k}" for k in range(1, 4)]


def separated(config: str, mixture: np.ndarray) -> dict[str, np.ndarray]:
    from spleeter.separator import Separator

    return Separator(config, multiprocess=False).separate(mixture)


def test_onnx_runtime_agrees_with_tensorflow(dc_model, musdb_stems, tmp_path):
    """The exported network's embeddings within 1e-4 of TensorFlow's on the excerpt, and
    ``-e onnx`` separating to the same sources."""
    from spleeter.audio.spectrogram import magnitude_blocks, stft
    from spleeter.engines.onnx_export import export_onnx
    from spleeter.engines.onnxruntime import OnnxRuntimeEngine
    from spleeter.engines.tensorflow import TensorFlowEngine
    from spleeter.separator import Separator

    config = json.loads(Path(dc_model).read_text())
    mixture = sum_of_stems(musdb_stems)
    blocks = magnitude_blocks(stft(mixture, 4096, 1024), config["T"], config["F"])
    reference = TensorFlowEngine(config, config["model_dir"])(blocks)["embedding"]
    path = export_onnx(config, config["model_dir"], tmp_path / "dc.onnx")
    exported = OnnxRuntimeEngine(str(path))(blocks)
    assert list(exported) == ["embedding"]
    assert exported["embedding"].shape == blocks.shape[:3] + (20,)
    assert np.abs(exported["embedding"] - reference).max() < 1e-4
    sources = Separator(dc_model, multiprocess=False, engine="tensorflow").separate(mixture)
    onnx = Separator(dc_model, multiprocess=False, engine="onnx").separate(mixture)
    for name in sources:
        assert np.abs(onnx[name] - sources[name]).max() < 1e-4, name


def test_bad_inputs_give_a_message_or_a_sensible_result(dc_model, tmp_path):
    config = json.loads(Path(dc_model).read_text())
    # A configuration the network cannot have: one line, before any work.
    bad = json.loads(json.dumps(config))
    bad["model"]["params"]["embedding_dimension"] = 1
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    result = run("separate", "-p", str(path), "-o", str(tmp_path / "o"), str(path))
    assert result.exit_code == 1
    assert "embedding_dimension must be an integer >= 2 (got 1)" in result.output
    assert not (tmp_path / "o").exists()
    from spleeter import SpleeterError
    from spleeter.separator import Separator

    # --split splits named stems: clusters are not (one line, not an AttributeError).
    with pytest.raises(SpleeterError, match="--split splits the named stems of a mask model"):
        Separator(dc_model, multiprocess=False, split={"source_1": 2})
    separator = Separator(dc_model, multiprocess=False)
    # Silence: every source silent (no bin sounds; the clusters are of identical embeddings).
    silent = separator.separate(np.zeros((44100, 2), np.float32))
    assert len(silent) == 3 and all(np.abs(s).max() == 0 for s in silent.values())
    # 100 samples: as many samples out, summing to the input.
    short = np.random.default_rng(0).normal(0, 0.1, (100, 2)).astype(np.float32)
    pieces = separator.separate(short)
    assert all(p.shape == (100, 2) for p in pieces.values())
    np.testing.assert_allclose(np.sum(list(pieces.values()), axis=0), short, atol=1e-4)
    # K beyond the sampled bins: one clear line from the CLI.
    wav = tmp_path / "short.wav"
    soundfile.write(wav, short, 44100)
    result = run(
        "separate", "-p", dc_model, "--clusters", "3000", "-o", str(tmp_path / "k"), str(wav)
    )
    assert result.exit_code == 1
    assert "time-frequency bins" in result.output and "--clusters 3000" in result.output
    assert not (tmp_path / "k").exists()


def test_embeddings_stay_unit_length_under_float16(tmp_path):
    """Under the float16 mixed-precision policy the network computes in float16 but its
    normalisation in float32 (the sum of squares would overflow float16 past a norm of 256):
    float32 unit vectors out."""
    import keras

    from spleeter.model import build_model

    config = tiny_dc_config(tmp_path, tmp_path / "train.csv")
    magnitudes = np.abs(np.random.default_rng(0).normal(0, 30, (1, 64, 256, 2)))
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = build_model(config)
        embedding = model(magnitudes.astype("float32"), training=False)["embedding"]
    finally:
        keras.config.set_dtype_policy(previous)
    assert model.get_layer("conv2d").compute_dtype == "float16"
    assert model.get_layer("embedding").compute_dtype == "float32"
    assert embedding.dtype == "float32"
    norms = np.linalg.norm(np.asarray(embedding), axis=-1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-3)
