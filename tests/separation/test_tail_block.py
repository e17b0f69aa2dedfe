"""The zero-padded last block runs cut short (the registry's ``tail_frames``), same outputs."""

import dataclasses

import numpy as np
import pytest
from modelkit import tiny_config, write_config, write_model

from spleeter.engines import create_engine
from spleeter.model import registry
from spleeter.separator import Separator
from spleeter.utils.configuration import load_configuration


@pytest.fixture(scope="module")
def full_length_unet(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A 6-level U-Net with upstream's T = 512 (small filters and F): the tail rule applies."""
    directory = tmp_path_factory.mktemp("tail")
    config = tiny_config(load_configuration("spleeter:4stems"), directory / "model", T=512, F=64)
    write_model(config, seed=3)
    config["config_path"] = write_config(config, directory / "config.json")
    return config


@pytest.fixture(scope="module")
def five_level_unet(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A 5-level U-Net (frames a multiple of 32) with T = 256: the rule follows the depth."""
    directory = tmp_path_factory.mktemp("tail5")
    config = tiny_config(load_configuration("spleeter:4stems"), directory / "model", T=256, F=64)
    config["model"]["params"]["conv_n_filters"] = [4, 8, 8, 16, 16]
    write_model(config, seed=4)
    return config


@pytest.mark.parametrize("real", [1, 28, 70, 130, 200, 250])
def test_cut_block_gives_the_full_blocks_outputs_and_one_step_less_does_not(full_length_unet, real):
    assert_cut_is_exact_and_tight(full_length_unet, real, multiple=64)


@pytest.mark.parametrize("real", [1, 20, 60, 100])
def test_the_rule_follows_the_depth(five_level_unet, real):
    assert_cut_is_exact_and_tight(five_level_unet, real, multiple=32)


def assert_cut_is_exact_and_tight(params: dict, real: int, multiple: int) -> None:
    engine = create_engine(params, params["model_dir"])
    T = params["T"]
    block = np.zeros((1, T, params["F"], 2), np.float32)
    block[:, :real] = np.random.default_rng(real).gamma(1.0, 1.0, (1, real, params["F"], 2))
    cut = registry.architecture(params).tail_frames(params, real)
    assert cut % multiple == 0 and real < cut < T
    full = engine(block)
    shorter = engine(np.ascontiguousarray(block[:, :cut]))
    for name, value in full.items():
        scale = np.abs(value[:, :real]).max()
        assert scale > 1e-3
        assert np.abs(shorter[name][:, :real] - value[:, :real]).max() <= 1e-6 * scale, name
    if cut - multiple > real + 2:  # the rule is tight: one step fewer changes the outputs
        less = engine(np.ascontiguousarray(block[:, : cut - multiple]))
        worst = max(np.abs(less[n][:, :real] - v[:, :real]).max() for n, v in full.items())
        assert worst > 1e-4 * scale


def test_separation_cuts_the_last_block_with_the_same_samples(
    full_length_unet, musdb_stems, monkeypatch
):
    params = full_length_unet
    # the 6 s excerpt three times, cut to 14 s: one whole 512-frame block, then 95 frames
    mixture = np.concatenate([musdb_stems["mixture"]] * 3)[: 14 * 44100]
    engine_type = type(create_engine(params, params["model_dir"]))
    shapes: list[tuple[int, ...]] = []
    original = engine_type.__call__

    def recording(self, blocks):
        shapes.append(blocks.shape)
        return original(self, blocks)

    monkeypatch.setattr(engine_type, "__call__", recording)
    cut = Separator(params["config_path"], multiprocess=False).separate(mixture)
    assert [shape[1] for shape in shapes] == [512, 320]
    entry = registry.ARCHITECTURES["unet.unet"]
    monkeypatch.setitem(
        registry.ARCHITECTURES, "unet.unet", dataclasses.replace(entry, tail_frames=None)
    )
    shapes.clear()
    whole = Separator(params["config_path"], multiprocess=False).separate(mixture)
    assert [shape[1] for shape in shapes] == [512, 512]
    for name, samples in whole.items():
        assert cut[name].shape == samples.shape == mixture.shape
        assert np.abs(samples).max() > 1e-3
        assert np.abs(cut[name] - samples).max() <= 1e-6 * np.abs(samples).max(), name
