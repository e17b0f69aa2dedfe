"""Configurations with impossible or ill-typed values, generated here, each through the command
line: exit 1, one ``ERROR:spleeter:`` line naming the key (one line per problem), no traceback,
no new file, nothing existing changed. And a property: any configuration near a bundled one is
either refused cleanly by the schema or separates with finite output of the input's length.
"""

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from test_bad_input import run, snapshot

from spleeter.model.checks import ConfigurationError, configuration_problems
from spleeter.utils.configuration import embedded_configuration_names, load_configuration
from spleeter.utils.schema import schema_problems

NAN = float("nan")
INF = float("inf")


def base_config(model_dir: str = "model") -> dict[str, Any]:
    config = load_configuration("spleeter:2stems")
    config["model_dir"] = model_dir
    return config


def changed(**values: Any) -> dict[str, Any]:
    config = base_config()
    config.update(values)
    return config


def without(key: str) -> dict[str, Any]:
    config = base_config()
    del config[key]
    return config


def with_model(**model: Any) -> dict[str, Any]:
    return changed(model=model)


# name: (configuration or raw JSON text, substrings of the one error line)
CASES: dict[str, tuple[Any, tuple[str, ...]]] = {
    # zero or negative sizes
    "sample_rate_zero": (changed(sample_rate=0), ("sample_rate (0) must be > 0",)),
    "sample_rate_negative": (changed(sample_rate=-44100), ("sample_rate (-44100)", "> 0")),
    "frame_length_zero": (changed(frame_length=0), ("frame_length (0) must be >= 2",)),
    "frame_length_one": (changed(frame_length=1), ("frame_length (1) must be >= 2",)),
    "frame_step_zero": (changed(frame_step=0), ("frame_step (0) must be > 0",)),
    "frame_step_negative": (changed(frame_step=-1024), ("frame_step (-1024)",)),
    "T_zero": (changed(T=0), ("T (0) must be > 0",)),
    "T_negative": (changed(T=-512), ("T (-512) must be > 0",)),
    "F_zero": (changed(F=0), ("F (0) must be > 0",)),
    "n_channels_zero": (changed(n_channels=0), ("n_channels (0) must be 1 (mono) or 2",)),
    "n_channels_three": (changed(n_channels=3), ("n_channels (3)",)),
    # a frequency crop the STFT cannot give, a step longer than the frame
    "F_above_bins": (
        changed(F=5000),
        ("F (5000) must be at most frame_length // 2 + 1 = 2049",),
    ),
    "frame_step_above_frame": (
        changed(frame_step=8192),
        ("frame_step (8192) must be at most frame_length (4096)",),
    ),
    # the exponent: wrong sign or type
    "exponent_negative": (changed(separation_exponent=-2), ("separation_exponent (-2)", "> 0")),
    "exponent_zero": (changed(separation_exponent=0), ("separation_exponent (0) must be > 0",)),
    "exponent_string": (
        changed(separation_exponent="2"),
        ('separation_exponent ("2") must be a number',),
    ),
    "exponent_bool": (changed(separation_exponent=True), ("separation_exponent (true)",)),
    "exponent_nan": (changed(separation_exponent=NAN), ("separation_exponent (NaN)", "finite")),
    "exponent_huge": (changed(separation_exponent=60), ("separation_exponent (60)", "<= 10")),
    # instruments
    "instruments_empty": (changed(instrument_list=[]), ("instrument_list ([])", "at least one")),
    "instruments_string": (changed(instrument_list="vocals"), ('instrument_list ("vocals")',)),
    "instruments_repeated": (
        changed(instrument_list=["vocals", "vocals"]),
        ("instrument_list", "vocals repeated"),
    ),
    "instruments_hold_mix": (
        changed(instrument_list=["vocals", "mix"]),
        ("instrument_list", "must not hold mix_name (mix)"),
    ),
    "instrument_not_a_name": (
        changed(instrument_list=["vocals", 7]),
        ("instrument_list[1] (7) must be a string",),
    ),
    "instrument_empty_name": (
        changed(instrument_list=["vocals", " "]),
        ('instrument_list[1] (" ") must be a non-empty string',),
    ),
    "mix_name_empty": (changed(mix_name=""), ('mix_name ("")',)),
    # ill-typed sizes
    "T_string": (changed(T="512"), ('T ("512") must be an integer (got a string)',)),
    "T_fraction": (changed(T=512.5), ("T (512.5) must be an integer",)),
    "T_bool": (changed(T=True), ("T (true) must be an integer, not a boolean",)),
    "T_null": (changed(T=None), ("T (null) must be an integer",)),
    "F_list": (changed(F=[1024]), ("F ([1024]) must be an integer (got a list)",)),
    "sample_rate_huge": (changed(sample_rate=10**40), ("sample_rate", "at most 2**31 - 1")),
    # choices and nested objects
    "mask_extension_unknown": (
        changed(mask_extension="ones"),
        ('mask_extension ("ones") must be one of "zeros", "average"',),
    ),
    "mask_extension_null": (changed(mask_extension=None), ("mask_extension (null)",)),
    "model_not_object": (
        changed(model=["unet.unet"]),
        ('model (["unet.unet"]) must be an object',),
    ),
    "model_type_not_string": (with_model(type=3, params={}), ("model.type (3) must be a string",)),
    "model_params_not_object": (
        with_model(type="unet.unet", params=[]),
        ("model.params ([]) must be an object",),
    ),
    "model_dir_empty": (changed(model_dir=""), ('model_dir ("")',)),
    "missing_key": (without("frame_step"), ("lacks frame_step (needed to separate)",)),
    # the registry's checks, in the same list
    "model_type_unknown": (
        with_model(type="unet.nope", params={}),
        ("No model function unet.nope",),
    ),
    "T_not_a_multiple": (changed(T=100), ("T (100) must be a multiple of 64 for unet.unet",)),
    "filters_not_positive": (
        with_model(type="unet.unet", params={"conv_n_filters": [8, 0]}),
        ("model.params.conv_n_filters",),
    ),
    # pathological JSON
    "json_nan_literal": (
        json.dumps(changed(T=None)).replace('"T": null', '"T": NaN'),
        ("T (NaN) must be a finite integer",),
    ),
    "json_overflowing_number": (
        json.dumps(changed(F=None)).replace('"F": null', '"F": 1e999'),
        ("F (Infinity) must be a finite integer",),
    ),
    "json_duplicate_key": ('{"T": 512, "T": 64}', ('key "T" appears twice',)),
    "json_deep_nesting": ('{"model": ' + "[" * 100_000 + "]" * 100_000 + "}", ("nested too",)),
    "json_not_an_object": ("[1, 2, 3]", ("must be a JSON object",)),
    "json_broken": ('{"T": 512,', ("is not valid JSON",)),
    "json_empty_file": ("", ("is not valid JSON",)),
    "json_not_utf8": (b'{"mix_name": "\xff"}', ("cannot be read",)),
}


def write_case(directory: Path, case: Any) -> Path:
    path = directory / "bad.json"
    if isinstance(case, bytes):
        path.write_bytes(case)
    elif isinstance(case, str):
        path.write_text(case)
    else:
        path.write_text(json.dumps(case))
    return path


@pytest.fixture
def song(tmp_path: Path) -> Path:
    path = tmp_path / "song.wav"
    rng = np.random.default_rng(0)
    soundfile.write(path, rng.uniform(-0.5, 0.5, (4410, 2)), 44100, subtype="PCM_16")
    return path


def assert_refused_lines(result: Any, before: dict, root: Path, needles: tuple[str, ...]) -> None:
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR:spleeter:")]
    assert result.exit_code == 1, result.stderr
    assert "Traceback" not in result.stderr and isinstance(result.exception, SystemExit)
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("ERROR:spleeter:Configuration "), errors[0]
    for needle in needles:
        assert needle in errors[0], errors[0]
    assert len(errors[0]) < 300
    assert snapshot(root) == before
    assert not (root / "out").exists()


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_configuration_is_refused_by_separate(name, tmp_path, song):
    case, needles = CASES[name]
    config = write_case(tmp_path, case)
    before = snapshot(tmp_path)
    result = run("separate", "-p", str(config), "-o", str(tmp_path / "out"), str(song))
    assert_refused_lines(result, before, tmp_path, (str(config), *needles))


@pytest.mark.parametrize("name", ["F_above_bins", "T_string", "instruments_empty", "T_zero"])
@pytest.mark.parametrize("command", ["train", "export", "evaluate"])
def test_bad_configuration_is_refused_by_every_command(name, command, tmp_path):
    case, needles = CASES[name]
    config = write_case(tmp_path, dict(case, train_csv=str(tmp_path / "train.csv")))
    (tmp_path / "data").mkdir()
    before = snapshot(tmp_path)
    out = str(tmp_path / "out")
    extra = {
        "train": ["-d", str(tmp_path / "data")],
        "export": ["-o", out],
        "evaluate": ["-o", out, "--mus_dir", str(tmp_path / "data"), "--metrics", "fast"],
    }[command]
    result = run(command, "-p", str(config), *extra)
    if command == "evaluate" and result.exit_code == 10:
        pytest.skip("fast_bss_eval is not installed")
    assert_refused_lines(result, before, tmp_path, (str(config), *needles))


def test_every_problem_has_its_own_line(tmp_path, song):
    config = write_case(tmp_path, changed(T="512", F=5000, mask_extension="ones"))
    before = snapshot(tmp_path)
    result = run("separate", "-p", str(config), "-o", str(tmp_path / "out"), str(song))
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR:spleeter:")]
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert [line.split(": ", 1)[1].split(" ")[0] for line in errors] == ["T", "F", "mask_extension"]
    assert all(line.startswith(f"ERROR:spleeter:Configuration {config}: ") for line in errors)
    assert snapshot(tmp_path) == before and not (tmp_path / "out").exists()


def test_the_message_names_key_value_and_bound(tmp_path):
    from spleeter.separator import Separator

    path = tmp_path / "my.json"
    path.write_text(json.dumps(changed(F=5000)))
    with pytest.raises(ConfigurationError) as caught:
        Separator(str(path))
    assert str(caught.value) == (
        f"Configuration {path}: F (5000) must be at most frame_length // 2 + 1 = 2049 "
        "(the STFT's bins)"
    )


@pytest.mark.parametrize("name", embedded_configuration_names())
def test_bundled_configurations_pass(name):
    params = load_configuration(f"spleeter:{name}")
    assert configuration_problems(params, "separate") == []
    assert configuration_problems(params, "train") == []


def test_unknown_keys_and_integer_floats_are_accepted():
    assert schema_problems(changed(T=512.0, my_own_key={"anything": [1, None]})) == []


def test_training_keeps_its_own_checks_and_shares_the_schema():
    from spleeter.training.settings import TrainingConfigurationError, training_settings

    with pytest.raises(TrainingConfigurationError, match=r"F \(5000\) must be at most"):
        training_settings(changed(F=5000))
    with pytest.raises(TrainingConfigurationError, match="batch_size must be a positive"):
        training_settings(changed(batch_size=0))
    mono = changed(n_channels=1)
    assert training_settings(mono)[1]["n_channels"] == 1


# --- property: refused cleanly, or separated with finite output of the right length ----------

TINY = {
    "mix_name": "mix",
    "instrument_list": ["vocals", "accompaniment"],
    "sample_rate": 8000,
    "frame_length": 256,
    "frame_step": 64,
    "T": 16,
    "F": 64,
    "n_channels": 2,
    "separation_exponent": 2,
    "mask_extension": "zeros",
    "model": {"type": "unet.unet", "params": {"conv_n_filters": [2, 4]}},
}
"""A two-level U-Net (``T`` and ``F`` multiples of 4) small enough to separate in a blink."""

BAD = [0, -1, 2.5, NAN, INF, -INF, "16", None, True, [16], {}]
PLAUSIBLE = {
    "T": [4, 8, 12, 16, 32, 64, 6, 3],
    "F": [4, 8, 32, 64, 128, 129, 132, 2],
    "frame_step": [1, 16, 64, 128, 256, 257],
    "frame_length": [64, 128, 255, 256, 512, 1024, 2, 3],
    "sample_rate": [1, 8000, 16000, 44100],
    "separation_exponent": [0.5, 1, 2, 3.7, 10, 1e-3, 11, -2],
    "instrument_list": [["a"], ["vocals", "other", "bass"], ["a", "a"], ["mix"], [""], []],
    "mask_extension": ["zeros", "average", "Zeros", ""],
}
"""Per key: values near the bundled ones (most usable, some just out of bounds), drawn twice
as often as :data:`BAD` (values of the wrong type or sign)."""


@st.composite
def mutations(draw: Any) -> dict[str, Any]:
    """One to three keys of :data:`TINY` changed."""
    keys = draw(st.permutations(sorted(PLAUSIBLE)))[: draw(st.integers(1, 3))]
    return {key: draw(st.sampled_from(PLAUSIBLE[key] * 2 + BAD)) for key in keys}


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """One random checkpoint per number of instruments (the weights depend on nothing else
    that is mutated here), made on demand."""
    from modelkit import write_model

    made: dict[int, str] = {}

    def model_for(instruments: list[str]) -> str:
        if len(instruments) not in made:
            directory = tmp_path_factory.mktemp(f"tiny{len(instruments)}")
            config = {**TINY, "instrument_list": instruments, "model_dir": str(directory)}
            write_model(config, seed=len(instruments))
            made[len(instruments)] = str(directory)
        return made[len(instruments)]

    return model_for


@settings(
    max_examples=30,
    deadline=None,
    # CI runs the same 30 examples every time (a red CI must be reproducible); to explore,
    # set derandomize=False and raise max_examples by hand (300 were run so).
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    changes=mutations(),
    samples=st.integers(1, 3000),
)
def test_any_configuration_separates_or_is_refused(tiny_models, tmp_path_factory, changes, samples):
    from spleeter.separator import Separator

    config = {**TINY, **changes}
    instruments = config["instrument_list"]
    usable = (
        isinstance(instruments, list)
        and all(isinstance(i, str) for i in instruments)
        and len(set(instruments)) == len(instruments)
        and config.get("mix_name") not in instruments  # a model of those could not be built
    )
    config["model_dir"] = tiny_models(instruments) if usable and instruments else "absent"
    path = tmp_path_factory.mktemp("config") / "config.json"
    path.write_text(json.dumps(config))
    try:
        separator = Separator(str(path), multiprocess=False, engine="tensorflow")
    except ConfigurationError as error:  # refused cleanly: one line per problem, nothing else
        event("refused")
        lines = str(error).splitlines()
        assert lines and all(line.startswith(f"Configuration {path}") for line in lines)
        assert all(len(line) < 300 for line in lines)
        return
    event("separated")
    waveform = np.random.default_rng(samples).uniform(-0.5, 0.5, (samples, 2)).astype("float32")
    sources = separator.separate(waveform)
    assert list(sources) == config["instrument_list"]
    for stem in sources.values():
        assert stem.shape == (samples, 2) and np.isfinite(stem).all()
