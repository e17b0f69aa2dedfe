"""The U-Nets built as ONNX straight from their checkpoints: same numbers, no TensorFlow."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
from audiokit import AUTO_ON_CPU
from modelkit import ACTIVATION_PAIRS, spectrogram_blocks, tiny_config, write_config, write_model

from spleeter import SpleeterError
from spleeter.engines.onnx_export import export_onnx
from spleeter.engines.onnxruntime import OnnxRuntimeEngine
from spleeter.engines.tensorflow import TensorFlowEngine
from spleeter.utils.configuration import load_configuration

FIXTURES = Path(__file__).parents[1] / "fixtures" / "upstream"


@pytest.mark.parametrize("conv_activation, deconv_activation", ACTIVATION_PAIRS)
@pytest.mark.parametrize("base", ["spleeter:4stems", "spleeter:5stems"])
def test_graph_from_checkpoint_equals_tensorflow(
    base, conv_activation, deconv_activation, tmp_path
):
    config = tiny_config(load_configuration(base), tmp_path / "model")
    config["model"]["params"].update(
        conv_activation=conv_activation, deconv_activation=deconv_activation
    )
    write_model(config, seed=5)
    exported = export_onnx(config, config["model_dir"], tmp_path / "model.onnx")
    blocks = spectrogram_blocks(config)
    ours = OnnxRuntimeEngine(str(exported), "cpu")(blocks)
    reference = TensorFlowEngine(config, config["model_dir"], device="cpu")(blocks)
    assert (
        sorted(ours)
        == sorted(reference)
        == [f"{name}_spectrogram" for name in sorted(config["instrument_list"])]
    )
    for name, value in reference.items():
        assert ours[name].shape == value.shape
        assert np.abs(ours[name] - value).max() <= 1e-5 * np.abs(value).max(), name
        assert np.abs(value).max() > 1e-2


def test_mismatched_checkpoint_is_one_clear_error(tmp_path):
    config = load_configuration(str(FIXTURES / "configs" / "unet_4stems.json"))
    config["model_dir"] = str(FIXTURES / "models" / "unet_2stems")  # other filters, 2 stems
    with pytest.raises(SpleeterError, match=r"model\.ckpt-600 has no variable|has shape"):
        export_onnx(config, config["model_dir"], tmp_path / "model.onnx")
    assert not (tmp_path / "model.onnx").exists()


def _separate_in_subprocess(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``spleeter ...`` in a fresh interpreter that reports whether TensorFlow was imported."""
    script = (
        "import sys\n"
        "from spleeter.__main__ import spleeter\n"
        "try:\n"
        f"    spleeter({list(args)!r}, standalone_mode=False)\n"
        "finally:\n"
        "    print('TENSORFLOW_IMPORTED', 'tensorflow' in sys.modules, file=sys.stderr)\n"
        "    print('ONNX_IMPORTED', 'onnx' in sys.modules, file=sys.stderr)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_default_separation_of_a_unet_never_imports_tensorflow(tmp_path):
    model = tmp_path / "model"
    shutil.copytree(FIXTURES / "models" / "unet_2stems", model)
    config = load_configuration(str(FIXTURES / "configs" / "unet_2stems.json"))
    config_path = write_config({**config, "model_dir": str(model)}, tmp_path / "config.json")
    source = str(FIXTURES / "input.flac")
    first = _separate_in_subprocess(
        "separate", "-p", config_path, "-o", "first", source, cwd=tmp_path
    )
    assert first.returncode == 0, first.stderr
    assert "TENSORFLOW_IMPORTED False" in first.stderr
    # OpenVINO compiles the network built from the checkpoint: no ONNX file, not even the
    # onnx package (its import alone costs up to 0.7 s); ONNX Runtime runs a cached export.
    conversion = "for OpenVINO" if AUTO_ON_CPU == "openvino" else "Converting the model"
    assert first.stdout.count(conversion) == 1, first.stdout
    assert f"Separating with {AUTO_ON_CPU}" in first.stdout
    assert (model / "model.onnx").is_file() == (AUTO_ON_CPU == "onnxruntime")
    if AUTO_ON_CPU == "openvino":
        assert "ONNX_IMPORTED False" in first.stderr
    second = _separate_in_subprocess(
        "separate", "-p", config_path, "-o", "second", source, cwd=tmp_path
    )
    assert second.returncode == 0 and "TENSORFLOW_IMPORTED False" in second.stderr
    assert conversion not in second.stdout
    reference = _separate_in_subprocess(
        "separate", "-p", config_path, "-o", "tf", "-e", "tensorflow", source, cwd=tmp_path
    )
    assert "TENSORFLOW_IMPORTED True" in reference.stderr
    for stem in ("vocals", "accompaniment"):
        runs = [
            soundfile.read(tmp_path / run / "input" / f"{stem}.wav", dtype="int16")[0].astype(int)
            for run in ("first", "second", "tf")
        ]
        assert np.array_equal(runs[0], runs[1])
        assert np.abs(runs[0] - runs[2]).max() <= 2
        assert np.abs(runs[2]).max() > 100


def test_export_record_names_how_it_was_built(tmp_path):
    config = load_configuration(str(FIXTURES / "configs" / "unet_2stems.json"))
    config["model_dir"] = str(FIXTURES / "models" / "unet_2stems")
    exported = export_onnx(config, config["model_dir"], tmp_path / "model.onnx")
    metadata = json.loads(Path(f"{exported}.json").read_text())
    assert metadata["spleeter.model_type"] == "unet.unet"
    assert int(metadata["spleeter.onnx_bytes"]) == exported.stat().st_size
