"""Self-supervised pretraining (``spleeter pretrain``), the SSL encoder and ``unet.ssl_unet``.

Tiny configurations throughout (encoder: 16 mel bands, dim 16, 2 layers; U-Net filters 4..32,
T = F = 64) on the real MUSDB excerpt: its mixture and stems are the unlabelled audio.
"""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile
from modelkit import TINY_FILTERS, scalars
from typer.testing import CliRunner

from spleeter import SpleeterError
from spleeter.__main__ import spleeter
from spleeter.audio.features import encoder_mel_matrix, log_mel, mel_filterbank, mfcc
from spleeter.audio.spectrogram import frame_count, stft
from spleeter.model.encoder_config import EncoderConfig
from spleeter.ssl.config import pretrain_settings
from spleeter.ssl.masking import expected_masked_fraction, span_mask
from spleeter.ssl.units import UnitModel, fit_units
from spleeter.utils.configuration import load_configuration

SAMPLE_RATE = 44100

ENCODER = {
    "sample_rate": SAMPLE_RATE,
    "frame_length": 4096,
    "n_mels": 16,
    "conv_layers": 1,
    "conv_channels": 16,
    "conv_kernel": 3,
    "dim": 16,
    "layers": 2,
    "heads": 2,
    "ff_dim": 32,
    "pos_conv_kernel": 8,
    "pos_conv_groups": 4,
    "dropout": 0.1,
}

PRETRAIN = {
    "iterations": [
        {"units": 8, "target": "mfcc", "steps": 30},
        {"units": 8, "target": "layer", "layer": 1, "steps": 30},
    ],
    "batch_size": 4,
    "learning_rate": 0.003,
    "warmup_steps": 1,
    "chunk_duration": 6.0,
    "n_chunks_per_file": 1,
    "save_checkpoints_steps": 100,
    "save_summary_steps": 5,
    "kmeans_n_init": 1,
}


def tiny_config(directory: Path, **model_changes) -> dict:
    """A tiny 2-stem ``unet.ssl_unet`` configuration writing under ``directory``."""
    params = {
        "conv_activation": "ELU",
        "deconv_activation": "ELU",
        "conv_n_filters": TINY_FILTERS,
        "encoder": dict(ENCODER),
        "encoder_dir": str(directory / "encoder"),
        "encoder_trainable": False,
        "fusion": "both",
        "input_channels": 2,
        "bottleneck_channels": 4,
        **model_changes,
    }
    return {
        "train_csv": str(directory / "train.csv"),
        "model_dir": str(directory / "separator"),
        "mix_name": "mix",
        "instrument_list": ["vocals", "accompaniment"],
        "sample_rate": SAMPLE_RATE,
        "frame_length": 4096,
        "frame_step": 1024,
        "T": 64,
        "F": 64,
        "n_channels": 2,
        "chunk_duration": 4,
        "n_chunks_per_song": 1,
        "separation_exponent": 2,
        "mask_extension": "zeros",
        "learning_rate": 1e-3,
        "batch_size": 2,
        "train_max_steps": 3,
        "save_checkpoints_steps": 100,
        "save_summary_steps": 5,
        "random_seed": 0,
        "model": {"type": "unet.ssl_unet", "params": params},
        "pretrain": json.loads(json.dumps(PRETRAIN)),
    }


def write_json(path: Path, config: dict) -> str:
    path.write_text(json.dumps(config, indent=1))
    return str(path)


def run(*args: str):
    return CliRunner().invoke(spleeter, list(args))


def checkpoint_tensors(prefix: str) -> dict[str, np.ndarray]:
    import tensorflow as tf

    reader = tf.train.load_checkpoint(prefix)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory, musdb_stems) -> Path:
    """The excerpt's mixture and stems as WAV files in nested folders (unlabelled audio)."""
    root = tmp_path_factory.mktemp("unlabelled")
    for name, waveform in musdb_stems.items():
        folder = root / ("stems" if name != "mixture" else "")
        folder.mkdir(exist_ok=True)
        soundfile.write(folder / f"{name}.wav", waveform, SAMPLE_RATE, subtype="PCM_16")
    (root / "notes.txt").write_text("not audio")
    return root


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory, audio_dir) -> dict:
    """Two HuBERT iterations of 30 steps through the command line."""
    root = tmp_path_factory.mktemp("pretrained")
    config = tiny_config(root)
    path = write_json(root / "ssl.json", config)
    result = run("pretrain", "-p", path, "-d", str(audio_dir), "--verbose")
    assert result.exit_code == 0, result.output
    return {"root": root, "config": config, "path": path, "output": result.output}


@pytest.fixture(scope="module")
def separation_data(tmp_path_factory, musdb_stems) -> Path:
    """A one-song vocals/accompaniment dataset from the excerpt, and its CSV."""
    root = tmp_path_factory.mktemp("separation")
    mixture, vocals = musdb_stems["mixture"], musdb_stems["vocals"]
    for name, waveform in (("mix", mixture), ("vocals", vocals), ("acc", mixture - vocals)):
        soundfile.write(root / f"{name}.wav", waveform, SAMPLE_RATE, subtype="FLOAT")
    duration = mixture.shape[0] / SAMPLE_RATE
    (root / "train.csv").write_text(
        f"mix_path,vocals_path,accompaniment_path,duration\nmix.wav,vocals.wav,acc.wav,{duration}\n"
    )
    return root


# -- features -------------------------------------------------------------------------------


def test_mel_filterbank_is_librosas():
    import librosa

    for n_mels, fmax in ((16, 689.0), (128, None)):
        ours = mel_filterbank(SAMPLE_RATE, 4096, n_mels, 0.0, fmax)
        theirs = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=4096, n_mels=n_mels, fmax=fmax)
        np.testing.assert_allclose(ours, theirs, atol=1e-8)


def test_full_band_mel_matrix_covers_the_spectrum():
    """F = 2048 of 2049 bins: the bands reach Nyquist; the dropped Nyquist bin weighs 0."""
    config = EncoderConfig(n_mels=128)
    matrix = encoder_mel_matrix(config, 2048)
    full = mel_filterbank(SAMPLE_RATE, 4096, 128)
    assert matrix.shape == (2048, 128)
    assert full[:, 2048].max() < 1e-12 * full.max()
    assert matrix[-8:].sum() > 0  # the top bins are covered


def test_offline_features_equal_in_graph_features(musdb_stems):
    """Pretraining's numpy log-mel == the fused model's LogMel layer, frame for frame."""
    import keras

    from spleeter.model.layers.ssl_encoder import LogMel

    config = EncoderConfig.from_params(ENCODER)
    matrix = encoder_mel_matrix(config, 64)
    waveform = musdb_stems["mixture"][: SAMPLE_RATE * 2]
    magnitude = np.abs(stft(waveform, 4096, 1024)[:, :64, :])
    offline = log_mel(magnitude, matrix)
    layer = LogMel(matrix)
    in_graph = keras.ops.convert_to_numpy(layer(magnitude[None]))[0]
    assert offline.shape == (frame_count(waveform.shape[0], 4096, 1024), 16)
    np.testing.assert_allclose(in_graph, offline, atol=2e-5)
    assert mfcc(offline).shape == (offline.shape[0], 39)


# -- masking and units ----------------------------------------------------------------------


def test_span_mask_statistics():
    rng = np.random.default_rng(0)
    frames, prob, length = 512, 0.08, 10
    masks = np.stack([span_mask(rng, frames, prob, length) for _ in range(400)])
    interior = masks[:, length:-length].mean()
    assert abs(interior - expected_masked_fraction(prob, length)) < 0.03
    # every run of masked frames is at least one span long (spans are never cut)
    for mask in masks[:50]:
        edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(int), [0]])))
        runs = edges[1::2] - edges[::2]
        assert runs.min() >= length
    assert span_mask(rng, 5, 0.08, 10).all()  # shorter than a span: all masked (min_masks)
    assert not span_mask(rng, 64, 0.0, 10, min_masks=0).any()
    first = span_mask(np.random.default_rng([1, 2]), frames, prob, length)
    np.testing.assert_array_equal(
        first, span_mask(np.random.default_rng([1, 2]), frames, prob, length)
    )


def test_kmeans_units_are_deterministic(tmp_path):
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(6, 5)) * 4
    frames = (centres[rng.integers(0, 6, 3000)] + rng.normal(size=(3000, 5))).astype(np.float32)
    first = fit_units(frames, 6, "mfcc", seed=3, n_init=1)
    second = fit_units(frames, 6, "mfcc", seed=3, n_init=1)
    np.testing.assert_array_equal(first.centroids, second.centroids)
    np.testing.assert_array_equal(first.assign(frames), second.assign(frames))
    assert len(set(first.assign(frames))) == 6
    first.save(tmp_path)
    loaded = UnitModel.load(tmp_path)
    np.testing.assert_array_equal(loaded.assign(frames), first.assign(frames))
    with pytest.raises(SpleeterError, match="feature frames"):
        fit_units(frames[:3], 6, "mfcc")


# -- pretraining ----------------------------------------------------------------------------


def test_pretrain_learns_and_writes_an_encoder(pretrained):
    root = pretrained["root"]
    encoder_dir = root / "encoder"
    for iteration in (1, 2):
        directory = encoder_dir / f"iteration-{iteration}"
        assert (directory / "units.npz").is_file()
        assert (directory / "model.ckpt-30.index").is_file()
        losses = scalars(directory, "loss")
        assert len(losses) == 6
        assert losses[-1] < losses[0] * 0.9, losses
        assert scalars(directory, "masked_accuracy")[-1] > 1 / 8
    description = json.loads((encoder_dir / "encoder.json").read_text())
    assert description["iteration"] == 2 and description["encoder"]["dim"] == 16
    assert description["audio"] == {
        "sample_rate": SAMPLE_RATE,
        "frame_length": 4096,
        "frame_step": 1024,
        "F": 64,
        "n_channels": 2,
        "T": 64,
    }
    names = checkpoint_tensors(str(encoder_dir / "model.ckpt-30"))
    assert all(n.startswith("ssl_encoder/") or n == "global_step" for n in names)
    # Every folder pretraining writes describes itself: an encoder, trained by masked prediction.
    for folder, command in ((encoder_dir, "pretrain"), (encoder_dir / "iteration-2", "pretrain")):
        model = json.loads((folder / "model.json").read_text())
        assert (model["model_type"], model["family"], model["task"]) == (
            "ssl.encoder",
            None,
            "masked_prediction",
        )
        assert model["training"]["command"] == command and model["training"]["iteration"] == 2
        assert model["checkpoint"]["name"] == "model.ckpt-30"
        assert model["configuration"]["model"]["params"]["dim"] == 16
    assert "ssl_encoder/layer_1/attention/q_proj/kernel" in names
    assert "5 chunks" in pretrained["output"]  # 5 WAV files found recursively, notes.txt not


def test_iteration_two_clusters_encoder_layer_outputs(pretrained):
    encoder_dir = pretrained["root"] / "encoder"
    first = UnitModel.load(encoder_dir / "iteration-1")
    second = UnitModel.load(encoder_dir / "iteration-2")
    assert (first.target, first.centroids.shape) == ("mfcc", (8, 39))
    assert (second.target, second.layer, second.centroids.shape) == ("layer", 1, (8, 16))


def test_pretrain_again_does_nothing_and_exports(pretrained, audio_dir):
    result = run("pretrain", "-p", pretrained["path"], "--export")
    assert result.exit_code == 0, result.output
    assert "already pretrained" in result.output
    assert (pretrained["root"] / "encoder" / "encoder.onnx").is_file()


@pytest.mark.slow
def test_pretrain_resumes_exactly(tmp_path, audio_dir):
    """6 steps, then on to 10, give the checkpoint of 10 uninterrupted steps."""
    results = {}
    for name, stops in (("straight", [10]), ("resumed", [6, 10])):
        root = tmp_path / name
        root.mkdir()
        config = tiny_config(root)
        config["pretrain"]["iterations"] = config["pretrain"]["iterations"][:1]
        path = write_json(root / "ssl.json", config)
        for stop in stops:
            result = run("pretrain", "-p", path, "-d", str(audio_dir), "--max-steps", str(stop))
            assert result.exit_code == 0, result.output
        results[name] = checkpoint_tensors(str(root / "encoder" / "iteration-1" / "model.ckpt-10"))
    assert "Iteration 1: resuming" in result.output
    assert sorted(results["straight"]) == sorted(results["resumed"])
    for name, value in results["straight"].items():
        np.testing.assert_array_equal(value, results["resumed"][name], err_msg=name)


def test_pretrain_errors_are_one_line(tmp_path, audio_dir):
    config = tiny_config(tmp_path)
    del config["model"]["params"]["encoder"]
    path = write_json(tmp_path / "no_encoder.json", config)
    result = run("pretrain", "-p", path, "-d", str(audio_dir))
    assert result.exit_code == 1
    assert "model.params.encoder" in result.output
    path = write_json(tmp_path / "ok.json", tiny_config(tmp_path))
    result = run("pretrain", "-p", path, "-d", str(tmp_path / "missing"))
    assert result.exit_code == 1 and "does not exist" in result.output
    bad = tiny_config(tmp_path, encoder={**ENCODER, "sample_rate": 22050})
    result = run("pretrain", "-p", write_json(tmp_path / "bad.json", bad), "-d", str(audio_dir))
    assert result.exit_code == 1 and "differs from the encoder's" in result.output
    with pytest.raises(SpleeterError, match="heads"):
        EncoderConfig.from_params({**ENCODER, "heads": 3})


def test_iterations_option_repeats_the_last_iteration():
    config = tiny_config(Path("/tmp/x"))
    settings = pretrain_settings(config, iterations=3, max_steps=7)
    assert [i.target for i in settings.iterations] == ["mfcc", "layer", "layer"]
    assert {i.steps for i in settings.iterations} == {7}


# -- feature extraction ---------------------------------------------------------------------


def test_ssl_encoder_features_one_frame_per_stft_frame(pretrained, musdb_stems):
    from spleeter.ssl import SSLEncoder

    encoder = SSLEncoder.load(pretrained["root"] / "encoder")
    waveform = musdb_stems["mixture"][: SAMPLE_RATE * 3 + 123]
    features = encoder.features(waveform)
    frames = frame_count(waveform.shape[0], 4096, 1024)
    assert features.shape == (frames, 16) and np.isfinite(features).all()
    assert encoder.hop == 1024 and math.isclose(encoder.frame_rate, SAMPLE_RATE / 1024)
    # blocks of T = 64 frames, as the separator: a block does not see the frames after it
    np.testing.assert_allclose(
        encoder.features(waveform[: 100 * 1024])[:64], features[:64], atol=1e-5
    )
    whole = encoder.features(waveform, block_frames=None)
    assert whole.shape == features.shape and not np.allclose(whole[:64], features[:64])
    middle = SSLEncoder.load(pretrained["root"] / "encoder", layer=1).features(waveform)
    assert middle.shape == features.shape and not np.allclose(middle, features)
    onnx = SSLEncoder.load(pretrained["root"] / "encoder", engine="onnx").features(waveform)
    assert np.abs(onnx - features).max() < 1e-4


def test_convert_round_trip(pretrained, tmp_path, musdb_stems):
    """Our encoder -> interface state dict (.npz) -> encoder directory: same features."""
    from spleeter.ssl import SSLEncoder
    from spleeter.ssl.convert import fold_weight_norm, main

    encoder_dir = pretrained["root"] / "encoder"
    state = tmp_path / "state.npz"
    assert main(["export", str(encoder_dir), "-o", str(state)]) == 0
    with np.load(state) as stored:
        names = set(stored.files)
        q_proj = stored["encoder.layers.0.attention.q_proj.weight"]
        pos = stored["encoder.pos_conv_embed.conv.weight"]
    assert q_proj.shape == (16, 16) and pos.shape == (16, 4, 8)  # (out, in / groups, k)
    assert "feature_extractor.conv_layers.0.conv.weight" in names and "masked_spec_embed" in names
    # a Hugging Face-style file: model prefix, weight-normed position convolution
    with np.load(state) as stored:
        hf = {f"hubert.{k}": stored[k] for k in stored.files}
    weight = hf.pop("hubert.encoder.pos_conv_embed.conv.weight")
    norm = np.sqrt((weight.astype(np.float64) ** 2).sum(axis=(0, 1), keepdims=True))
    hf["hubert.encoder.pos_conv_embed.conv.weight_g"] = norm.astype(np.float32)
    hf["hubert.encoder.pos_conv_embed.conv.weight_v"] = weight * 3.0
    np.testing.assert_allclose(fold_weight_norm(norm, weight * 3.0), weight, atol=1e-6)
    np.savez(tmp_path / "hf.npz", **hf)
    architecture = str(encoder_dir / "encoder.json")
    target = tmp_path / "converted"
    assert main(["import", str(tmp_path / "hf.npz"), "-p", architecture, "-o", str(target)]) == 0
    waveform = musdb_stems["mixture"][: SAMPLE_RATE * 2]
    np.testing.assert_allclose(
        SSLEncoder.load(target).features(waveform),
        SSLEncoder.load(encoder_dir).features(waveform),
        atol=1e-5,
    )
    # a waveform front end (HuBERT's CNN) is refused with an explanation
    hf["hubert.feature_extractor.conv_layers.0.conv.weight"] = np.zeros((512, 1, 10), np.float32)
    np.savez(tmp_path / "waveform.npz", **hf)
    assert (
        main(
            [
                "import",
                str(tmp_path / "waveform.npz"),
                "-p",
                architecture,
                "-o",
                str(tmp_path / "x"),
            ]
        )
        == 1
    )


# -- the fused separator --------------------------------------------------------------------


def _train_fused(root: Path, pretrained: dict, data: Path, trainable: bool, *options: str) -> dict:
    config = tiny_config(root, encoder_trainable=trainable)
    config["model"]["params"]["encoder_dir"] = str(pretrained["root"] / "encoder")
    config["train_csv"] = str(data / "train.csv")
    path = write_json(root / "fused.json", config)
    result = run("train", "-p", path, "-d", str(data), "--verbose", *options)
    assert result.exit_code == 0, result.output
    assert "Initialised ssl_encoder from" in result.output
    return {"config": config, "path": path, "output": result.output}


def encoder_changes(pretrained: dict, model_dir: str) -> list[str]:
    """The encoder variables of a separator checkpoint that differ from the pretrained ones."""
    from spleeter.model.checkpoint import find_checkpoint

    encoder = checkpoint_tensors(str(pretrained["root"] / "encoder" / "model.ckpt-30"))
    tensors = checkpoint_tensors(find_checkpoint(model_dir))
    return [
        name
        for name, value in encoder.items()
        if name != "global_step" and not np.array_equal(tensors[name], value)
    ]


def test_fused_separator_trains_separates_and_exports(
    pretrained, separation_data, tmp_path, musdb_stems
):
    """Frozen encoder: trained with spleeter train, round-trips its checkpoint, sees the
    SSLEncoder's features, separates with TensorFlow and (exported) ONNX Runtime alike."""
    import keras

    from spleeter.model import build_model
    from spleeter.model.checkpoint import find_checkpoint, load_checkpoint, save_checkpoint
    from spleeter.separator import Separator
    from spleeter.ssl import SSLEncoder

    frozen = _train_fused(tmp_path, pretrained, separation_data, trainable=False)
    params = frozen["config"]
    model_dir = params["model_dir"]
    tensors = checkpoint_tensors(find_checkpoint(model_dir))
    assert "conv2d/kernel" in tensors and "conv2d_7/kernel" in tensors  # upstream's names
    assert "ssl_projection_1/kernel" in tensors and "ssl_bottleneck_projection/kernel" in tensors
    assert not encoder_changes(pretrained, model_dir), "a frozen encoder must not change"

    # checkpoint round trip: load, save, load again gives the same tensors
    model = build_model(params)
    load_checkpoint(model, find_checkpoint(model_dir))
    again = checkpoint_tensors(save_checkpoint(model, tmp_path / "copy", 3))
    for name, value in tensors.items():
        if name.startswith(("ssl", "conv2d", "batch_normalization")) and "/Adam" not in name:
            np.testing.assert_array_equal(again[name], value, err_msg=name)

    # the separator's encoder sees what SSLEncoder extracts (one block of T = 64 frames)
    waveform = musdb_stems["mixture"][: SAMPLE_RATE * 3]
    inside = keras.Model(model.input, model.get_layer("ssl_encoder").output[-1])
    magnitude = np.abs(stft(waveform, 4096, 1024)[:64, :64, :])[None]
    encoder = SSLEncoder.load(pretrained["root"] / "encoder")
    np.testing.assert_allclose(
        inside(magnitude).numpy()[0], encoder.features(waveform)[:64], atol=1e-4
    )
    np.testing.assert_allclose(
        SSLEncoder.from_separator(frozen["path"]).features(waveform),
        encoder.features(waveform),
        atol=1e-5,
    )

    # separation: TensorFlow, then ONNX Runtime on spleeter export's graph, within 1e-4
    tf_separator = Separator(frozen["path"], multiprocess=False, engine="tensorflow")
    reference = tf_separator.separate(waveform)
    assert set(reference) == {"vocals", "accompaniment"}
    assert reference["vocals"].shape == waveform.shape
    result = run("export", "-p", frozen["path"], "-o", str(tmp_path / "onnx"))
    assert result.exit_code == 0, result.output
    exported = str(tmp_path / "onnx" / "config.json")
    ours = Separator(exported, multiprocess=False, engine="onnx").separate(waveform)
    for name in reference:
        assert np.abs(ours[name] - reference[name]).max() <= 1e-4, name
        assert np.abs(reference[name]).max() > 1e-2

    # and through the command line
    wav = tmp_path / "song.wav"
    soundfile.write(wav, waveform, SAMPLE_RATE)
    result = run("separate", "-p", exported, "-o", str(tmp_path / "out"), str(wav))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "song" / "vocals.wav").is_file()


@pytest.mark.slow
def test_fused_separator_fine_tunes_a_trainable_encoder(pretrained, separation_data, tmp_path):
    """Fine-tuning (in mixed precision): the encoder changes, the unused mask embedding not."""
    trainable = _train_fused(tmp_path, pretrained, separation_data, True, "--mixed-precision")
    changed = encoder_changes(pretrained, trainable["config"]["model_dir"])
    assert changed and "ssl_encoder/mask_embedding" not in changed


def test_frozen_encoder_runs_in_inference_mode(tmp_path):
    """In training mode a frozen encoder has no dropout; a fine-tuned one has."""
    import keras

    from spleeter.model import build_model

    magnitude = np.random.default_rng(0).random((1, 64, 64, 2)).astype(np.float32)
    for trainable in (False, True):
        config = tiny_config(tmp_path, encoder_trainable=trainable)
        config["model"]["params"]["encoder"]["dropout"] = 0.5
        model = build_model(config)
        inside = keras.Model(model.input, model.get_layer("ssl_encoder").output[-1])
        first, second = (inside(magnitude, training=True).numpy() for _ in range(2))
        assert np.array_equal(first, second) != trainable
        encoder = [v for v in model.trainable_weights if v.path.startswith("ssl_encoder/")]
        assert bool(encoder) == trainable


def test_fused_model_needs_its_pretrained_encoder(tmp_path, separation_data):
    config = tiny_config(tmp_path)
    config["train_csv"] = str(separation_data / "train.csv")
    path = write_json(tmp_path / "fused.json", config)
    result = run("train", "-p", path, "-d", str(separation_data))
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("ERROR:spleeter:")]
    assert len(errors) == 1 and "spleeter pretrain" in errors[0], result.output
    assert "Traceback" not in result.output
    assert not list(tmp_path.rglob("model.ckpt-*")), "no checkpoint before the encoder is there"


# -- bundled configurations -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["2stems-ssl", "4stems-ssl"])
def test_bundled_configs_resolve_and_cover_the_full_band(name):
    params = load_configuration(f"spleeter:{name}")
    assert params["model"]["type"] == "unet.ssl_unet"
    assert params["F"] == params["frame_length"] // 2 and params["mask_extension"] == "average"
    assert params["model_dir"] == name and params["model_unpublished"]
    settings = pretrain_settings(params)
    assert [i.target for i in settings.iterations] == ["mfcc", "layer"]
    assert settings.encoder_dir == "ssl-encoder"
    assert EncoderConfig.from_params(params["model"]["params"]["encoder"]).dim == 256


def test_missing_ssl_model_says_how_to_train_it_without_network(monkeypatch, tmp_path):
    from spleeter.model.provider.github import GithubModelProvider
    from spleeter.separator import Separator

    def no_network(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(GithubModelProvider, "download", no_network)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SpleeterError) as caught:
        Separator("spleeter:4stems-ssl", multiprocess=False).separate(
            np.zeros((44100, 2), np.float32)
        )
    message = str(caught.value)
    assert "\n" not in message
    assert "no published weights" in message
    assert "spleeter pretrain -p spleeter:4stems-ssl" in message and "docs/ssl.md" in message
    wav = tmp_path / "silence.wav"
    soundfile.write(wav, np.zeros((44100, 2)), SAMPLE_RATE)
    result = run("separate", "-p", "spleeter:4stems-ssl", "-o", str(tmp_path / "o"), str(wav))
    assert result.exit_code == 1 and "no published weights" in result.output
    result = run("export", "-p", "spleeter:2stems-ssl")
    assert result.exit_code == 1 and "spleeter pretrain -p spleeter:2stems-ssl" in result.output


@pytest.mark.slow
def test_bundled_4stems_ssl_model_builds_at_full_size():
    from spleeter.model import build_model

    model = build_model(load_configuration("spleeter:4stems-ssl"))
    encoder = [v for v in model.weights if v.path.startswith("ssl_encoder/")]
    assert 5e6 < sum(int(np.prod(v.shape)) for v in encoder) < 7e6
    outputs = model(np.random.rand(1, 512, 2048, 2).astype(np.float32))
    assert outputs["drums_spectrogram"].shape == (1, 512, 2048, 2)


@pytest.mark.slow
def test_pretrain_in_mixed_precision(tmp_path, audio_dir):
    config = tiny_config(tmp_path)
    config["pretrain"]["iterations"] = config["pretrain"]["iterations"][:1]
    path = write_json(tmp_path / "ssl.json", config)
    result = run(
        "pretrain", "-p", path, "-d", str(audio_dir), "--max-steps", "5",
        "--mixed-precision-dtype", "float16",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    tensors = checkpoint_tensors(str(tmp_path / "encoder" / "iteration-1" / "model.ckpt-5"))
    assert "loss_scale/current_loss_scale" in tensors
    assert tensors["ssl_encoder/layer_0/attention/q_proj/kernel"].dtype == np.float32
    assert np.isfinite(scalars(tmp_path / "encoder" / "iteration-1", "loss")).all()


def test_residual_fusion_starts_as_the_unet_it_is_initialised_from(
    pretrained, separation_data, tmp_path, musdb_stems
):
    """``fusion_style: residual``: a trained U-Net initialises the fused model (--init-from),
    whose output at step 0 is that U-Net's exactly (zero-initialised fusion); training then
    moves the fusion layers."""
    from spleeter.model.checkpoint import find_checkpoint
    from spleeter.separator import Separator

    unet = tiny_config(tmp_path / "unet")
    unet["model"] = {"type": "unet.unet", "params": {"conv_n_filters": TINY_FILTERS}}
    unet["model"]["params"] |= {"conv_activation": "ELU", "deconv_activation": "ELU"}
    unet["train_csv"] = str(separation_data / "train.csv")
    unet_path = write_json(tmp_path / "unet.json", unet)
    result = run("train", "-p", unet_path, "-d", str(separation_data), "-q")
    assert result.exit_code == 0, result.output

    fused = tiny_config(tmp_path / "fused", fusion_style="residual")
    fused["model"]["params"]["encoder_dir"] = str(pretrained["root"] / "encoder")
    fused["train_csv"] = str(separation_data / "train.csv")
    fused_path = write_json(tmp_path / "fused.json", fused)
    common = ("-p", fused_path, "-d", str(separation_data), "--init-from", unet["model_dir"])
    result = run("train", *common, "--max-steps", "0", "-q")
    assert result.exit_code == 0, result.output

    waveform = musdb_stems["mixture"][: SAMPLE_RATE * 3]
    ours = Separator(fused["model_dir"], multiprocess=False, engine="tensorflow")
    reference = Separator(unet_path, multiprocess=False, engine="tensorflow").separate(waveform)
    at_start = ours.separate(waveform)
    for name, samples in reference.items():
        assert np.abs(samples).max() > 1e-2
        assert np.abs(at_start[name] - samples).max() <= 1e-6, name

    result = run("train", *common, "--max-steps", "3", "-q")
    assert result.exit_code == 0, result.output
    start = checkpoint_tensors(str(Path(fused["model_dir"]) / "model.ckpt-0"))
    end = checkpoint_tensors(find_checkpoint(fused["model_dir"]))
    for name in ("ssl_input_residual/kernel", "ssl_bottleneck_residual/kernel"):
        assert not start[name].any() and np.abs(end[name]).max() > 0, name
