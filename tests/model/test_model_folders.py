"""Self-describing model folders: ``model.json`` written by export, read by ``-p FOLDER``.

(Training writes it too: tests/training/test_train.py checks the folder it trains and separates
with it; tests/engines/test_onnx.py separates with ``spleeter export -o``'s folder.)
"""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile
from audiokit import AUTO_ON_CPU
from typer.testing import CliRunner

from spleeter.__main__ import spleeter
from spleeter.model.description import describe_model, write_model_description
from spleeter.model.encoder_config import EncoderConfig
from spleeter.model.encoder_folder import EncoderAudio, encoder_configuration
from spleeter.separator import Separator
from spleeter.utils.configuration import MODEL_JSON, load_configuration

FIXTURES = Path(__file__).parents[1] / "fixtures" / "upstream"
CONFIG = FIXTURES / "configs" / "unet_2stems.json"


def run(*args: str):
    return CliRunner().invoke(spleeter, list(args))


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("ERROR:spleeter:")]


@pytest.fixture
def model_copy(tmp_path) -> tuple[dict, Path]:
    """The fixture 2-stems U-Net (upstream's folder: checkpoint, no model.json), copied."""
    params = load_configuration(str(CONFIG))
    folder = tmp_path / "2stems"
    shutil.copytree(FIXTURES / "models" / params["model_dir"], folder)
    params["model_dir"] = str(folder)
    return params, folder


@pytest.fixture(scope="module")
def waveform():
    return soundfile.read(FIXTURES / "input.flac", dtype="float32")[0]


def test_export_makes_an_upstream_folder_self_describing(model_copy, tmp_path, waveform):
    params, folder = model_copy
    config = tmp_path / "config.json"
    config.write_text(json.dumps(params))
    checkpoint = folder / "model.ckpt-600"
    # A training record already there (as spleeter train writes it) survives the export.
    write_model_description(
        folder, describe_model(params, str(checkpoint), {"command": "train", "step": 7})
    )
    result = run("export", "-p", str(config))
    assert result.exit_code == 0, result.output
    described = json.loads((folder / MODEL_JSON).read_text())
    assert described["training"] == {"command": "train", "step": 7}
    fingerprint = hashlib.sha256(Path(f"{checkpoint}.index").read_bytes()).hexdigest()
    assert described["checkpoint"]["fingerprint"] == fingerprint
    onnx = (folder / "model.onnx").read_bytes()
    assert described["exports"]["model.onnx"]["bytes"] == len(onnx)
    assert described["exports"]["model.onnx"]["sha256"] == hashlib.sha256(onnx).hexdigest()

    reference = Separator(str(config), multiprocess=False, engine="tensorflow").separate(waveform)
    from_folder = Separator(str(folder), multiprocess=False)
    assert from_folder.instruments == ["vocals", "accompaniment"]
    ours = from_folder.separate(waveform)
    assert from_folder._engine.name == AUTO_ON_CPU  # auto: the folder's fresh export
    for name, samples in reference.items():
        assert ours[name].shape == samples.shape
        assert np.abs(ours[name] - samples).max() <= 1e-4, name


def folder_with(tmp_path: Path, content: str | None) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    if content is not None:
        (folder / MODEL_JSON).write_text(content)
    return folder


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "is a directory without model.json"),
        ("{not json", "is not valid JSON"),
        (json.dumps({"format": 99, "configuration": {}}), "written by a newer spleeter"),
        (json.dumps({"configuration": {}}), "has no format number"),
        (json.dumps({"format": 1, "configuration": []}), "has no configuration object"),
    ],
)
def test_a_folder_that_does_not_describe_a_model_is_refused(
    tmp_path, mixture_wav, content, message
):
    folder = folder_with(tmp_path, content)
    output = tmp_path / "out"
    result = run("separate", "-p", str(folder), "-o", str(output), str(mixture_wav))
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = error_lines(result.output)
    assert len(lines) == 1 and message in lines[0] and str(folder) in lines[0], result.output
    assert not output.exists()


def test_an_encoder_folder_is_not_taken_for_a_separator(tmp_path, mixture_wav):
    config = EncoderConfig.from_params({"dim": 32, "layers": 1, "heads": 2})
    audio = EncoderAudio(44100, 4096, 1024, 1024, 2, 64)
    described = describe_model(encoder_configuration(config, audio), None)
    assert (described["family"], described["task"], described["sources"]) == (
        None,
        "masked_prediction",
        [],
    )
    folder = folder_with(tmp_path, json.dumps(described))
    result = run("separate", "-p", str(folder), "-o", str(tmp_path / "out"), str(mixture_wav))
    assert result.exit_code == 1
    lines = error_lines(result.output)
    assert len(lines) == 1 and "ssl.encoder" in lines[0] and "does not separate sources" in lines[0]
