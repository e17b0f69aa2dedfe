"""The network registry: every architecture declared once, config checks read the declarations."""

import pytest

from spleeter import SpleeterError
from spleeter.model import ARCHITECTURES, ModelNotFoundError, get_model_function
from spleeter.model.registry import architecture, architecture_problems
from spleeter.training.settings import training_settings
from spleeter.utils.configuration import embedded_configuration_names, load_configuration


def test_upstream_types_resolve_through_the_registry():
    from spleeter.model.functions import blstm, unet

    assert get_model_function("unet.unet") is unet.unet
    assert get_model_function("unet.softmax_unet") is unet.softmax_unet
    assert get_model_function("blstm.blstm") is blstm.blstm
    with pytest.raises(ModelNotFoundError, match="No model function unet.nope found"):
        get_model_function("unet.nope")
    with pytest.raises(ValueError):  # upstream raised a ValueError
        get_model_function("nothing")


def test_every_entry_declares_family_task_and_a_resolvable_builder():
    for name, entry in ARCHITECTURES.items():
        assert entry.type == name
        assert entry.task in ("separation", "masked_prediction", "reconstruction")
        assert entry.family in ("mask", "cluster", "embedding", None)
        assert entry.objective in ("magnitudes", "deep_clustering")
        assert callable(entry.build_function())
    assert {e.type for e in ARCHITECTURES.values() if e.family == "mask"} == {
        "unet.unet",
        "unet.softmax_unet",
        "unet.ssl_unet",
        "blstm.blstm",
        "transformer.zipformer",
    }
    assert {e.type for e in ARCHITECTURES.values() if e.family == "cluster"} == {
        "seanet.autoencoder"
    }
    assert {e.type for e in ARCHITECTURES.values() if e.family == "embedding"} == {
        "dc.unet_embedding"
    }
    assert {e.type for e in ARCHITECTURES.values() if e.objective == "deep_clustering"} == {
        "dc.unet_embedding"
    }


def test_every_bundled_configuration_names_a_registered_separator():
    for name in embedded_configuration_names():
        params = load_configuration(f"spleeter:{name}")
        assert architecture_problems(params) == [], name
        expected = {"cluster": "cluster", "dc": "embedding"}.get(name.rsplit("-")[-1], "mask")
        assert architecture(params).family == expected, name


@pytest.mark.parametrize("model_type", ["unet.unet", "unet.softmax_unet", "unet.ssl_unet"])
def test_frame_multiple_follows_the_number_of_levels(model_type):
    params = {"T": 96, "F": 128, "model": {"type": model_type, "params": {}}}
    params["model"]["params"]["conv_n_filters"] = [4, 8, 16, 32, 64]  # 5 levels: 32
    assert architecture(params).frame_multiple(params) == 32
    assert architecture_problems(params) == []
    params["T"] = 80
    (problem,) = architecture_problems(params)
    assert problem == (
        f"T (80) must be a multiple of 32 for {model_type} (its time/frequency reduction)"
    )
    del params["model"]["params"]["conv_n_filters"]  # upstream's six levels
    assert architecture(params).bin_multiple(params) == 64


def test_blstm_needs_no_multiple_and_bad_filters_are_named():
    assert architecture_problems({"T": 7, "F": 13, "model": {"type": "blstm.blstm"}}) == []
    bad = {"T": 64, "F": 64, "model": {"type": "unet.unet", "params": {"conv_n_filters": [8, 0]}}}
    assert architecture_problems(bad) == [
        "model.params.conv_n_filters must be a list of positive integers (got [8, 0])"
    ]
    unknown = architecture_problems({"model": {"type": "transformer.big"}})
    assert unknown[0].startswith("No model function transformer.big found (known: blstm.blstm")


def test_training_and_separation_refuse_a_frame_grid_the_network_cannot_take(tmp_path):
    """A 5-level fused U-Net with T = 80: one clear line before any model is built (it was a
    Keras shape error)."""
    import json

    params = load_configuration("spleeter:4stems-ssl")
    params["model"]["params"]["conv_n_filters"] = [8, 16, 32, 64, 128]
    params.update(T=80, train_csv="train.csv", train_max_steps=1)
    with pytest.raises(SpleeterError, match=r"T \(80\) must be a multiple of 32 for unet.ssl_unet"):
        training_settings(params)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(params))
    from spleeter.separator import Separator

    with pytest.raises(SpleeterError, match=r"T \(80\) must be a multiple of 32"):
        Separator(str(path))


def test_the_encoder_is_registered_but_neither_trained_nor_separated_as_a_separator(tmp_path):
    import json

    params = load_configuration("spleeter:4stems")
    params["model"] = {"type": "ssl.encoder"}
    params.update(train_csv="train.csv", train_max_steps=1)
    with pytest.raises(SpleeterError, match="ssl.encoder is not trained by spleeter train"):
        training_settings(params)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(params))
    from spleeter.separator import Separator

    with pytest.raises(SpleeterError, match="does not separate sources"):
        Separator(str(path))
