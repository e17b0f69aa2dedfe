"""The U-Nets built for OpenVINO straight from their checkpoints, and the cache of them."""

import os
from pathlib import Path

import numpy as np
import pytest
from modelkit import ACTIVATION_PAIRS, spectrogram_blocks, tiny_config, write_model

from spleeter.engines import create_engine, openvino_network
from spleeter.engines.onnx_export import export_onnx
from spleeter.engines.onnxruntime import OnnxRuntimeEngine
from spleeter.engines.openvino import OpenVinoEngine, import_openvino
from spleeter.engines.openvino_network import cached_network, network_cache
from spleeter.engines.tensorflow import TensorFlowEngine
from spleeter.utils.configuration import load_configuration

pytest.importorskip("openvino")  # the engine modules import it lazily


def tiny_model(directory: Path, base: str = "spleeter:4stems", seed: int = 5, **params) -> dict:
    config = tiny_config(load_configuration(base), directory)
    config["model"]["params"].update(params)
    write_model(config, seed=seed)
    return config


def assert_close(ours: dict, reference: dict) -> None:
    assert sorted(ours) == sorted(reference)
    for name, value in reference.items():
        assert ours[name].shape == value.shape
        assert np.abs(value).max() > 1e-2
        assert np.abs(ours[name] - value).max() <= 1e-5 * np.abs(value).max(), name


@pytest.mark.parametrize("conv_activation, deconv_activation", ACTIVATION_PAIRS)
@pytest.mark.parametrize("base", ["spleeter:4stems", "spleeter:5stems"])
def test_network_from_checkpoint_equals_tensorflow(
    base, conv_activation, deconv_activation, tmp_path
):
    config = tiny_model(
        tmp_path / "model",
        base,
        conv_activation=conv_activation,
        deconv_activation=deconv_activation,
    )
    network = cached_network(config, config["model_dir"], import_openvino())
    blocks = spectrogram_blocks(config)
    ours = OpenVinoEngine(network)(blocks)
    reference = TensorFlowEngine(config, config["model_dir"], device="cpu")(blocks)
    assert sorted(ours) == [f"{name}_spectrogram" for name in sorted(config["instrument_list"])]
    assert_close(ours, reference)


def test_cache_holds_the_network_and_its_compiled_blob_and_nothing_beside_the_checkpoint(
    tmp_path, capsys
):
    config = tiny_model(tmp_path / "model")
    before = sorted(os.listdir(config["model_dir"]))
    first = create_engine(config, config["model_dir"])
    assert "Built the network" in capsys.readouterr().out
    (folder,) = network_cache().iterdir()
    assert {"model.xml", "model.bin", "used", "compiled"} <= set(os.listdir(folder))
    assert any((folder / "compiled").iterdir()), "OpenVINO's compiled blob"
    assert sorted(os.listdir(config["model_dir"])) == before
    second = create_engine(config, config["model_dir"])  # loaded from the compiled blob
    assert "Built the network" not in capsys.readouterr().out
    blocks = spectrogram_blocks(config)
    ours, again = first(blocks), second(blocks)
    for name, value in ours.items():
        assert np.array_equal(again[name], value), name
    exported = export_onnx(config, config["model_dir"], tmp_path / "model.onnx")
    assert_close(ours, OnnxRuntimeEngine(str(exported), "cpu")(blocks))


def test_cut_short_network_is_rebuilt(tmp_path):
    config = tiny_model(tmp_path / "model")
    network = cached_network(config, config["model_dir"], import_openvino())
    weights = network.with_name("model.bin")
    weights.write_bytes(weights.read_bytes()[:1000])
    again = cached_network(config, config["model_dir"], import_openvino())
    assert again == network and weights.stat().st_size > 1000
    blocks = spectrogram_blocks(config)
    reference = TensorFlowEngine(config, config["model_dir"], device="cpu")(blocks)
    assert_close(create_engine(config, config["model_dir"])(blocks), reference)


def test_a_changed_checkpoint_gets_its_own_network_and_old_ones_are_forgotten(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(openvino_network, "KEPT_NETWORKS", 2)
    config = tiny_model(tmp_path / "model")
    blocks = spectrogram_blocks(config)
    folders, outputs = [], []
    for step, seed in enumerate((1, 2, 3), start=20):
        write_model(config, seed=seed, step=step)
        network = cached_network(config, config["model_dir"], import_openvino())
        folders.append(network.parent)
        outputs.append(OpenVinoEngine(network)(blocks))
    assert len(set(folders)) == 3
    assert sorted(network_cache().iterdir()) == sorted(folders[1:])  # the two most recent
    reference = TensorFlowEngine(config, config["model_dir"], device="cpu")(blocks)
    assert_close(outputs[-1], reference)
    assert np.abs(outputs[0]["vocals_spectrogram"] - reference["vocals_spectrogram"]).max() > 1e-3


def test_unwritable_cache_compiles_in_memory(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    config = tiny_model(tmp_path / "model")
    engine = create_engine(config, config["model_dir"])
    assert engine.name == "openvino"
    assert "Separating with openvino on CPU" in capsys.readouterr().out
    blocks = spectrogram_blocks(config)
    reference = TensorFlowEngine(config, config["model_dir"], device="cpu")(blocks)
    assert_close(engine(blocks), reference)
    assert blocker.read_text() == ""


def test_refused_precision_keeps_the_cached_network(tmp_path, monkeypatch, capsys):
    from spleeter import SpleeterError
    from spleeter.engines import openvino

    config = tiny_model(tmp_path / "model")
    create_engine(config, config["model_dir"])
    (folder,) = network_cache().iterdir()
    monkeypatch.setattr(openvino, "cpu_capabilities", lambda core=None: ["FP32"])
    capsys.readouterr()
    with pytest.raises(SpleeterError, match="no bfloat16 arithmetic"):
        create_engine(config, config["model_dir"], precision="bfloat16")
    assert "building the network again" not in capsys.readouterr().err
    assert list(network_cache().iterdir()) == [folder] and any((folder / "compiled").iterdir())


def test_unreadable_cached_network_is_built_again_once(tmp_path, capsys):
    config = tiny_model(tmp_path / "model")
    network = cached_network(config, config["model_dir"], import_openvino())
    network.write_text("<net>not OpenVINO IR</net>")  # the weights' size still matches
    capsys.readouterr()
    engine = create_engine(config, config["model_dir"])
    logged = capsys.readouterr()
    assert logged.err.count("building the network again") == 1, logged.err
    assert logged.out.count("Built the network") == 1, logged.out
    blocks = spectrogram_blocks(config)
    reference = TensorFlowEngine(config, config["model_dir"], device="cpu")(blocks)
    assert_close(engine(blocks), reference)
