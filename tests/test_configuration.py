"""Configurations: bundled ``spleeter:NAME`` files and JSON paths, and their errors."""

import json

import pytest

from spleeter import SpleeterError
from spleeter.utils.configuration import embedded_configuration_names, load_configuration

UPSTREAM_BUNDLED = {
    # name: (model_dir, instruments, F, model type, params, random_seed)
    "2stems": ("2stems", ["vocals", "accompaniment"], 1024, "unet.unet", {}, 0),
    "2stems-16kHz": ("2stems", ["vocals", "accompaniment"], 1536, "unet.unet", {}, 0),
    "4stems": ("4stems", ["vocals", "drums", "bass", "other"], 1024, "unet.unet", "ELU", 3),
    "4stems-16kHz": ("4stems", ["vocals", "drums", "bass", "other"], 1536, "unet.unet", "ELU", 3),
    "5stems": (
        "5stems",
        ["vocals", "piano", "drums", "bass", "other"],
        1024,
        "unet.softmax_unet",
        "ELU",
        8,
    ),
    "5stems-16kHz": (
        "5stems",
        ["vocals", "piano", "drums", "bass", "other"],
        1536,
        "unet.softmax_unet",
        "ELU",
        8,
    ),
    "musdb": ("musdb_model", ["vocals", "drums", "bass", "other"], 1024, "unet.unet", "ELU", 3),
}


def test_every_upstream_configuration_is_bundled():
    assert set(UPSTREAM_BUNDLED) <= set(embedded_configuration_names())


@pytest.mark.parametrize("name", sorted(UPSTREAM_BUNDLED))
def test_bundled_configuration_values(name):
    model_dir, instruments, F, model_type, params, seed = UPSTREAM_BUNDLED[name]
    config = load_configuration(f"spleeter:{name}")
    assert config["model_dir"] == model_dir
    assert config["instrument_list"] == instruments
    assert config["F"] == F
    assert config["model"]["type"] == model_type
    expected_params = (
        {} if params == {} else {"conv_activation": params, "deconv_activation": params}
    )
    assert config["model"]["params"] == expected_params
    assert config["random_seed"] == seed
    common = {
        "mix_name": "mix",
        "sample_rate": 44100,
        "frame_length": 4096,
        "frame_step": 1024,
        "T": 512,
        "n_channels": 2,
        "separation_exponent": 2,
        "mask_extension": "zeros",
        "learning_rate": 1e-4,
        "batch_size": 4,
        "save_summary_steps": 5,
    }
    assert {key: config[key] for key in common} == common


def test_json_path(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"model_dir": "x", "T": 64}))
    assert load_configuration(str(path)) == {"model_dir": "x", "T": 64}


def test_unknown_embedded_name_is_a_clear_error():
    with pytest.raises(SpleeterError, match="No embedded configuration 7stems found.*4stems"):
        load_configuration("spleeter:7stems")


def test_missing_file(tmp_path):
    with pytest.raises(SpleeterError, match=r"Configuration file .*nope\.json not found"):
        load_configuration(str(tmp_path / "nope.json"))


def test_unparsable_file_names_file_and_position(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"model_dir": "x",\n "T": }')
    with pytest.raises(SpleeterError, match=r"broken\.json is not valid JSON.*line 2") as caught:
        load_configuration(str(path))
    assert "\n" not in str(caught.value)


def test_json_that_is_not_an_object(tmp_path):
    path = tmp_path / "list.json"
    path.write_text("[1, 2]")
    with pytest.raises(SpleeterError, match="must be a JSON object"):
        load_configuration(str(path))
