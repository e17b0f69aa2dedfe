"""ONNX export and the ONNX Runtime engine: same samples as TensorFlow, clear device errors."""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import soundfile
from audiokit import AUTO_ON_CPU
from typer.testing import CliRunner

from spleeter import SpleeterError
from spleeter.__main__ import spleeter
from spleeter.engines import create_engine
from spleeter.engines.onnx_export import METADATA_FINGERPRINT, onnx_model_for, read_metadata
from spleeter.separator import Separator
from spleeter.utils.configuration import load_configuration

FIXTURES = Path(__file__).parents[1] / "fixtures" / "upstream"
ARCHITECTURES = {
    # name: (fixture config, golden npz)
    "unet-2stems": ("unet_2stems.json", "2stems.npz"),
    "unet-4stems": ("unet_4stems.json", "4stems.npz"),
    "softmax-unet-5stems": ("softmax_unet_5stems.json", "5stems.npz"),
    "blstm-2stems": ("blstm_2stems.json", "blstm.npz"),
}


def run(*args: str):
    return CliRunner().invoke(spleeter, list(args))


@pytest.fixture
def fixture_models(monkeypatch, upstream_model_copies):
    monkeypatch.setenv("MODEL_PATH", str(upstream_model_copies))


@pytest.fixture(scope="module")
def upstream_input():
    return soundfile.read(FIXTURES / "input.flac", dtype="float32")[0]


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_engines_agree_on_every_architecture(
    architecture, fixture_models, tmp_path, upstream_input
):
    config_name, _ = ARCHITECTURES[architecture]
    config = str(FIXTURES / "configs" / config_name)
    result = run("export", "-p", config, "-o", str(tmp_path / "exported"))
    assert result.exit_code == 0, result.output
    exported = tmp_path / "exported"
    proto = onnx.load(str(exported / "model.onnx"))
    assert (
        max(entry.version for entry in proto.opset_import if entry.domain in ("", "ai.onnx")) >= 17
    )
    instruments = load_configuration(config)["instrument_list"]
    assert [output.name for output in proto.graph.output] == [
        f"{name}_spectrogram" for name in instruments
    ]
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert (dims[0].dim_param, dims[1].dim_param) == ("batch", "frames")
    metadata = {prop.key: prop.value for prop in proto.metadata_props}
    assert json.loads(metadata["spleeter.instruments"]) == instruments
    assert json.loads(metadata["spleeter.config"])["instrument_list"] == instruments

    reference = Separator(config, multiprocess=False, engine="tensorflow").separate(upstream_input)
    # The export folder describes itself: no configuration file is needed to separate with it.
    described = json.loads((exported / "model.json").read_text())
    assert described["model_type"] == load_configuration(config)["model"]["type"]
    assert described["sources"] == instruments and described["family"] == "mask"
    onnx_bytes = (exported / "model.onnx").read_bytes()
    assert described["exports"]["model.onnx"]["sha256"] == hashlib.sha256(onnx_bytes).hexdigest()
    onnx_separator = Separator(str(exported), multiprocess=False, engine="onnx")
    ours = onnx_separator.separate(upstream_input)
    assert onnx_separator._engine.name == "onnxruntime"
    assert onnx_separator._engine.provider == "CPUExecutionProvider"
    for name in instruments:
        assert np.abs(ours[name] - reference[name]).max() <= 1e-4, name
        assert np.abs(reference[name]).max() > 1e-2


def copy_model(tmp_path: Path, config_name: str = "unet_2stems.json") -> str:
    """A writable copy of a fixture model and a config pointing at it."""
    config = load_configuration(str(FIXTURES / "configs" / config_name))
    target = tmp_path / "model"
    shutil.copytree(FIXTURES / "models" / config["model_dir"], target)
    config["model_dir"] = str(target)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return str(path)


@pytest.mark.parametrize("engine", ["auto", "onnx"])
def test_unets_are_converted_on_first_use_and_again_when_the_checkpoint_changes(
    engine, tmp_path, capsys
):
    # A U-Net is built from its checkpoint on first use: auto on a CPU with OpenVINO compiles
    # it for OpenVINO (its cache, nothing beside the checkpoint); ONNX Runtime gets model.onnx.
    config_path = copy_model(tmp_path / "unet")
    params = load_configuration(config_path)
    model_dir = params["model_dir"]
    assert onnx_model_for(params, model_dir, export=False) is None
    capsys.readouterr()
    runtime = AUTO_ON_CPU if engine == "auto" else "onnxruntime"
    told = "for OpenVINO" if runtime == "openvino" else "to ONNX"
    assert create_engine(params, model_dir, engine).name == runtime
    logged = capsys.readouterr().out.splitlines()
    assert len([line for line in logged if told in line]) == 1, logged  # one line, once
    assert create_engine(params, model_dir, engine).name == runtime
    assert told not in capsys.readouterr().out
    assert (Path(model_dir) / "model.onnx").is_file() == (runtime == "onnxruntime")
    # A changed checkpoint makes the conversion stale: it is converted again.
    from modelkit import write_model

    fingerprint = None
    if runtime == "onnxruntime":
        fingerprint = read_metadata(Path(model_dir) / "model.onnx")[METADATA_FINGERPRINT]
    write_model({**params, "model_dir": model_dir}, seed=9, step=11)
    assert onnx_model_for(params, model_dir, export=False) is None
    assert create_engine(params, model_dir, engine).name == runtime
    assert told in capsys.readouterr().out
    if runtime == "onnxruntime":
        assert read_metadata(Path(model_dir) / "model.onnx")[METADATA_FINGERPRINT] != fingerprint


def test_auto_converts_only_unets(tmp_path):

    # A network without a graph builder (traced by tf2onnx, a minute) is never converted by
    # auto: TensorFlow until exported, then ONNX Runtime (or OpenVINO) while it is fresh.
    config_path = copy_model(tmp_path / "blstm", "blstm_2stems.json")
    params = load_configuration(config_path)
    model_dir = params["model_dir"]
    assert create_engine(params, model_dir, "auto").name == "tensorflow"
    assert not (Path(model_dir) / "model.onnx").exists()
    assert create_engine(params, model_dir, "onnx").name == "onnxruntime"
    assert create_engine(params, model_dir, "auto").name == AUTO_ON_CPU


def test_auto_runs_openvino_on_the_cpu_with_onnx_runtimes_numbers(tmp_path, musdb_stems):
    pytest.importorskip("openvino")
    config_path = copy_model(tmp_path, "unet_4stems.json")
    mixture = musdb_stems["mixture"][: 10 * 44100]
    auto = Separator(config_path, multiprocess=False)
    onnx_runtime = Separator(config_path, multiprocess=False, engine="onnx")
    ours, reference = auto.separate(mixture), onnx_runtime.separate(mixture)
    assert (auto._engine.name, onnx_runtime._engine.name) == ("openvino", "onnxruntime")
    for name, samples in reference.items():
        assert np.abs(samples).max() > 1e-2
        assert np.abs(ours[name] - samples).max() <= 1e-5, name


def test_cli_reports_engine_and_provider(tmp_path):
    config_path = copy_model(tmp_path)
    source = FIXTURES / "input.flac"
    result = run(
        "separate", "-p", config_path, "-o", str(tmp_path / "out"), "-e", "onnx", str(source)
    )
    assert result.exit_code == 0, result.output
    assert "INFO:spleeter:Separating with onnxruntime on CPUExecutionProvider" in result.stdout
    result = run(
        "separate", "-p", config_path, "-o", str(tmp_path / "tf"), "-e", "tensorflow", str(source)
    )
    assert "INFO:spleeter:Separating with tensorflow on CPU" in result.stdout
    a, _ = soundfile.read(tmp_path / "out" / "input" / "vocals.wav", dtype="int16")
    b, _ = soundfile.read(tmp_path / "tf" / "input" / "vocals.wav", dtype="int16")
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 2


@pytest.mark.parametrize("engine", ["tensorflow", "onnx"])
def test_cuda_where_there_is_none_is_an_error(engine, tmp_path):
    from spleeter.engines.onnxruntime import import_onnxruntime

    if "CUDAExecutionProvider" in import_onnxruntime().get_available_providers():
        pytest.skip("this machine has CUDA: the error path cannot happen")
    config_path = copy_model(tmp_path)
    result = run(
        "separate",
        "-p",
        config_path,
        "-o",
        str(tmp_path / "out"),
        "-e",
        engine,
        "--device",
        "cuda",
        str(FIXTURES / "input.flac"),
    )
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR:spleeter:")]
    assert len(errors) == 1 and "--device cuda" in errors[0]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.wav"))


def test_exported_directory_for_another_network_is_refused(tmp_path, fixture_models):
    result = run(
        "export", "-p", str(FIXTURES / "configs" / "unet_2stems.json"), "-o", str(tmp_path / "x")
    )
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "x" / "config.json").read_text())
    config["instrument_list"] = ["vocals", "other"]
    with pytest.raises(SpleeterError, match="exported for another network: instrument_list"):
        onnx_model_for(config, str(tmp_path / "x"))
