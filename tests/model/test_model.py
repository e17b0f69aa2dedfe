"""Model architectures and upstream checkpoints: names, shapes, loading and its errors."""

import shutil

import numpy as np
import pytest
from modelkit import tiny_config, write_model

from spleeter import SpleeterError
from spleeter.engines.tensorflow import import_tensorflow
from spleeter.model import ModelNotFoundError, build_model, get_model_function
from spleeter.model.checkpoint import find_checkpoint, load_checkpoint, save_checkpoint
from spleeter.utils.configuration import load_configuration

import_tensorflow()


def suffix(index: int) -> str:
    return "" if index == 0 else f"_{index}"


def expected_unet_variables(n_instruments: int, filters=(16, 32, 64, 128, 256, 512), channels=2):
    """Upstream's checkpoint names and shapes for ``n_instruments`` U-Nets (dead BN excluded)."""
    expected = {}
    conv_in = [channels, *filters[:5]]
    deconv_in = [filters[5]] + [2 * f for f in reversed(filters[:5])]
    deconv_out = [*reversed(filters[:5]), 1]
    for k in range(n_instruments):
        for j in range(6):
            conv = f"conv2d{suffix(7 * k + j)}"
            expected[f"{conv}/kernel"] = (5, 5, conv_in[j], filters[j])
            expected[f"{conv}/bias"] = (filters[j],)
            deconv = f"conv2d_transpose{suffix(6 * k + j)}"
            expected[f"{deconv}/kernel"] = (5, 5, deconv_out[j], deconv_in[j])
            expected[f"{deconv}/bias"] = (deconv_out[j],)
            batch_norms = [(12 * k + j, filters[j]), (12 * k + 6 + j, deconv_out[j])]
            for index, size in batch_norms:
                if index == 12 * k + 5:
                    continue  # the deepest encoder level's batch norm is dead in upstream's graph
                for variable in ("gamma", "beta", "moving_mean", "moving_variance"):
                    expected[f"batch_normalization{suffix(index)}/{variable}"] = (size,)
        out = f"conv2d{suffix(7 * k + 6)}"
        expected[f"{out}/kernel"] = (4, 4, 1, 2)
        expected[f"{out}/bias"] = (2,)
    return expected


@pytest.mark.parametrize(
    "name, n_instruments", [("2stems", 2), ("4stems", 4), ("5stems", 5), ("4stems-16kHz", 4)]
)
def test_bundled_unet_variables_have_upstream_names_and_shapes(name, n_instruments):
    model = build_model(load_configuration(f"spleeter:{name}"))
    actual = {variable.path: tuple(variable.shape) for variable in model.weights}
    assert actual == expected_unet_variables(n_instruments)
    # 9,824,711 live float32 parameters per U-Net (upstream's 9,826,759 minus the dead BN).
    assert sum(int(np.prod(shape)) for shape in actual.values()) == 9_824_711 * n_instruments


def test_outputs_have_the_input_shape():
    config = load_configuration("spleeter:5stems")
    model = build_model(config)
    outputs = model(np.ones((1, 128, 1024, 2), np.float32))
    assert sorted(outputs) == sorted(f"{i}_spectrogram" for i in config["instrument_list"])
    assert all(tuple(value.shape) == (1, 128, 1024, 2) for value in outputs.values())
    # softmax_unet: the masks sum to one, so the estimates sum to the input.
    total = sum(np.asarray(value) for value in outputs.values())
    np.testing.assert_allclose(total, 1.0, atol=1e-5)


@pytest.mark.parametrize("model_type", ["unet.nope", "nope.unet", "unet", "unet.DEFAULT_FILTERS"])
def test_unknown_model_type(model_type):
    with pytest.raises(ModelNotFoundError, match=f"No model function {model_type} found"):
        get_model_function(model_type)
    assert issubclass(ModelNotFoundError, ValueError) and issubclass(
        ModelNotFoundError, SpleeterError
    )


@pytest.fixture(scope="module")
def tiny_2stems(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny2")
    config = tiny_config(load_configuration("spleeter:2stems"), directory / "model")
    model = write_model(config, seed=1)
    return config, model


def test_checkpoint_round_trip(tiny_2stems):
    config, saved = tiny_2stems
    fresh = build_model(config)
    unused = load_checkpoint(fresh, find_checkpoint(config["model_dir"]))
    assert unused == ["global_step"]
    for a, b in zip(saved.weights, fresh.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_checkpoint_state_written_elsewhere_still_resolves(tiny_2stems, tmp_path):
    config, _ = tiny_2stems
    moved = tmp_path / "moved"
    shutil.copytree(config["model_dir"], moved)
    (moved / "checkpoint").write_text(
        'model_checkpoint_path: "/some/other/machine/model.ckpt-10"\n'
    )
    assert find_checkpoint(moved) == str(moved / "model.ckpt-10")
    (moved / "checkpoint").unlink()
    assert find_checkpoint(moved) == str(moved / "model.ckpt-10")


def test_directory_without_checkpoint(tmp_path):
    (tmp_path / "README").write_text("nothing here")
    with pytest.raises(SpleeterError, match=f"Model directory {tmp_path} has no checkpoint"):
        find_checkpoint(tmp_path)


def test_missing_variable_is_named(tiny_2stems):
    config, _ = tiny_2stems
    four = tiny_config(load_configuration("spleeter:4stems"), config["model_dir"])
    with pytest.raises(
        SpleeterError, match=r"has no variable batch_normalization_24/beta \(and 139 more\)"
    ):
        load_checkpoint(build_model(four), find_checkpoint(config["model_dir"]))


def test_mismatched_shape_is_named(tiny_2stems):
    config, _ = tiny_2stems
    wider = tiny_config(load_configuration("spleeter:2stems"), config["model_dir"])
    wider["model"]["params"]["conv_n_filters"] = [8, 8, 8, 16, 16, 32]
    with pytest.raises(
        SpleeterError,
        match=r"batch_normalization/beta has shape \(4,\) in the checkpoint but the configuration"
        r" needs \(8,\) \(and 27 more\)",
    ):
        load_checkpoint(build_model(wider), find_checkpoint(config["model_dir"]))


def test_save_checkpoint_writes_upstream_layout(tiny_2stems, tmp_path):
    import tensorflow as tf

    _, model = tiny_2stems
    prefix = save_checkpoint(model, tmp_path, step=42)
    assert prefix == str(tmp_path / "model.ckpt-42")
    assert tf.train.latest_checkpoint(str(tmp_path)) == prefix
    names = dict(tf.train.list_variables(prefix))
    assert names["global_step"] == []
    assert names["conv2d_13/kernel"] == [4, 4, 1, 2]
    assert "batch_normalization_23/moving_variance" in names


def expected_blstm_checkpoint(n_instruments: int, units: int, F: int, channels: int = 2):
    """Upstream's CuDNNLSTM-era checkpoint names and shapes for ``blstm.blstm``."""
    expected = {}
    for k in range(n_instruments):
        for j in range(3):
            index = 3 * k + j
            inputs = F * channels if j == 0 else 2 * units
            for direction in ("forward", "backward"):
                prefix = f"bidirectional{suffix(index)}/{direction}_cu_dnnlstm{suffix(index)}"
                expected[f"{prefix}/kernel"] = [inputs, 4 * units]
                expected[f"{prefix}/recurrent_kernel"] = [units, 4 * units]
                expected[f"{prefix}/bias"] = [8 * units]
        expected[f"time_distributed_{2 * k + 1}/kernel"] = [2 * units, F * channels]
        expected[f"time_distributed_{2 * k + 1}/bias"] = [F * channels]
    return expected


def test_blstm_round_trips_through_upstream_names(tmp_path):
    import tensorflow as tf

    config = {
        "mix_name": "mix",
        "F": 64,
        "n_channels": 2,
        "instrument_list": ["vocals", "accompaniment"],
        "model": {"type": "blstm.blstm", "params": {"lstm_units": 8}},
    }
    model = build_model(config)
    spectrogram = np.random.default_rng(0).uniform(0, 1, (2, 16, 64, 2)).astype(np.float32)
    prefix = save_checkpoint(model, tmp_path, step=3)
    names = dict(tf.train.list_variables(prefix))
    names.pop("global_step")
    assert names == expected_blstm_checkpoint(2, 8, 64)
    # CuDNN's bias pair is folded into one standard LSTM bias when loading.
    cudnn_bias = np.arange(64, dtype=np.float32)
    loaded = build_model(config)
    load_checkpoint(loaded, prefix)
    np.testing.assert_allclose(
        model(spectrogram)["vocals_spectrogram"],
        loaded(spectrogram)["vocals_spectrogram"],
        atol=1e-6,
    )
    from spleeter.model.checkpoint import variable_mapping

    mapping = variable_mapping("bidirectional/forward_cu_dnnlstm/lstm_cell/bias")
    np.testing.assert_array_equal(mapping.to_keras(cudnn_bias), cudnn_bias[:32] + cudnn_bias[32:])
