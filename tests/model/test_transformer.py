"""The Zipformer-style transformer separator (``transformer.zipformer``) through the public
surface: presets, one clear line for bad configurations, ``spleeter train`` (loss going down,
exact resume), segment-size independence and ONNX Runtime agreeing with TensorFlow on the real
MUSDB excerpt."""

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from spleeter.__main__ import spleeter
from spleeter.model.registry import architecture, architecture_problems
from spleeter.model.transformer_config import PRESETS, TransformerConfig
from spleeter.utils.configuration import load_configuration

INSTRUMENTS = ["vocals", "drums", "bass", "other"]
TINY = {"preset": "small", "dim": 16, "heads": 2, "token_heads": 2}
CONFIGS = Path(__file__).parents[2] / "configs"


def run(*args: str):
    return CliRunner().invoke(spleeter, list(args))


def tiny_params(model_dir: Path, **overrides) -> dict:
    """A 4-stem configuration of a tiny transformer (T 64, F 256: 14 bands)."""
    config = load_configuration("spleeter:4stems-transformer")
    config.update(
        model_dir=str(model_dir), T=64, F=256, batch_size=2, chunk_duration=3.0,
        n_chunks_per_song=2, train_csv="train.csv", validation_csv="validation.csv",
        learning_rate=0.003, warmup_steps=2, lr_decay="constant", throttle_secs=0,
        save_checkpoints_steps=1, save_summary_steps=1, random_seed=3,
    )  # fmt: skip
    config["model"] = {"type": "transformer.zipformer", "params": dict(TINY)}
    config.update(overrides)
    return config


def write(config: dict, path: Path) -> str:
    path.write_text(json.dumps(config))
    return str(path)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> str:
    """A random tiny transformer saved as a model folder; returns its configuration's path."""
    from modelkit import write_model

    directory = tmp_path_factory.mktemp("tiny_transformer")
    config = tiny_params(directory / "model")
    write_model(config, seed=7)
    return write(config, directory / "config.json")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    from spleeter.rendering import render_dataset

    root = tmp_path_factory.mktemp("rendered") / "data"
    render_dataset(root, n_songs=3, seed=0, duration=6.0, stems=4)
    return root


@pytest.mark.parametrize("stems", ["2stems", "4stems", "5stems"])
def test_bundled_configs_are_usable_full_band_and_unpublished(stems):
    params = load_configuration(f"spleeter:{stems}-transformer")
    assert architecture_problems(params) == []
    entry = architecture(params)
    assert (entry.family, entry.task, entry.frame_multiple(params)) == ("mask", "separation", 8)
    assert params["F"] == params["frame_length"] // 2  # full band: 0-22 kHz
    edges = params["model"]["params"]["band_edges"]
    assert edges[0] == 0 and edges[-1] == params["F"]
    assert "spleeter train -p spleeter:" in params["model_unpublished"]


def _build(preset: str, bins: int = 2048):
    from spleeter.engines.tensorflow import import_tensorflow
    from spleeter.model import build_model

    import_tensorflow()
    params = {"mix_name": "mix", "instrument_list": INSTRUMENTS, "F": bins, "n_channels": 2}
    params["model"] = {"type": "transformer.zipformer", "params": {"preset": preset}}
    return build_model(params)


def test_the_small_preset_shapes_and_parameter_count():
    """One magnitude per stem with the input's shape, at most the input (a sigmoid mask); the
    parameter count docs/architecture.md gives (4 stems, full band)."""
    model = _build("small")
    assert model.count_params() == 2_907_961
    x = np.random.default_rng(0).uniform(0, 1, (1, 16, 2048, 2)).astype("float32")
    outputs = model(x)
    assert sorted(outputs) == sorted(f"{n}_spectrogram" for n in INSTRUMENTS)
    for value in outputs.values():
        value = np.asarray(value)
        assert value.shape == x.shape and (value >= 0).all() and (value <= x).all()
    assert set(PRESETS) == {"small", "large"}
    assert len(TransformerConfig.from_params({"preset": "small"}).edges(2048)) - 1 == 49


@pytest.mark.slow
def test_the_large_preset_parameter_count():
    assert _build("large").count_params() == 63_166_293
    assert len(TransformerConfig.from_params({"preset": "large"}).edges(2048)) - 1 == 63


BAD = {
    "band edges outside the bins": (
        {"band_edges": [0, 64, 128, 300]},
        "model.params.band_edges end at bin 300, outside the F = 256 bins",
    ),
    "width not divisible by heads": (
        {"dim": 18, "heads": 4},
        "model.params.dim (18) must be divisible by model.params.heads (4)",
    ),
    "schedule that does not divide T": (
        {"T": 60},
        "T (60) must be a multiple of 8 for transformer.zipformer",
    ),
    "negative presence loss weight": (
        {"presence_loss_weight": -1},
        "model.params.presence_loss_weight must be a number from 0 (got -1)",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_configuration_is_one_error_line_before_any_work(case, tmp_path, musdb_excerpt):
    change, message = BAD[case]
    config = tiny_params(tmp_path / "never")
    if "T" in change:
        config.update(change)
    else:
        config["model"]["params"].update(change)
    path = write(config, tmp_path / "bad.json")
    result = run("separate", "-p", path, "-o", str(tmp_path / "out"), str(musdb_excerpt))
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("ERROR:spleeter:")]
    assert len(errors) == 1 and message in errors[0], result.output
    assert not (tmp_path / "out").exists() and not (tmp_path / "never").exists()


def validation_losses(output: str) -> list[float]:
    """The losses of the "Validation at step N: loss X" lines of a training run."""
    return [
        float(line.split("loss ")[1].split()[0])
        for line in output.splitlines()
        if "Validation at step" in line
    ]


def _weights(model_dir: Path, step: int) -> dict[str, np.ndarray]:
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(model_dir / f"model.ckpt-{step}"))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


@pytest.mark.parametrize("mixed", [None, "bfloat16"])
def test_it_trains_through_the_cli(rendered, tmp_path, monkeypatch, mixed):
    """Two steps of spleeter train on rendered songs (also in bfloat16 mixed precision, the
    CPU's): a checkpoint of float32 weights, finite losses, model.json."""
    monkeypatch.chdir(tmp_path)
    config = write(tiny_params(tmp_path / "model", train_max_steps=2), tmp_path / "c.json")
    flags = ("--mixed-precision-dtype", mixed) if mixed else ()
    result = run("train", "-p", config, "-d", str(rendered), *flags)
    assert result.exit_code == 0, result.output
    losses = validation_losses(result.output)
    assert losses and all(np.isfinite(losses)), result.output
    tensors = _weights(tmp_path / "model", 2)
    assert int(tensors["global_step"]) == 2
    assert all(np.isfinite(value).all() for value in tensors.values())
    assert {v.dtype for v in tensors.values() if v.dtype.kind == "f"} == {np.dtype(np.float32)}
    described = json.loads((tmp_path / "model" / "model.json").read_text())
    assert described["model_type"] == "transformer.zipformer" and described["family"] == "mask"
    assert described["training"]["mixed_precision"] == mixed


def test_it_trains_with_scaled_adam(rendered, tmp_path, monkeypatch):
    """``optimizer: ScaledAdam`` (Zipformer's, with Eden decay) through ``spleeter train``:
    the validation loss goes down, and the checkpoint holds its two per-weight slots and its
    per-tensor scale statistic (their round trip is tested in tests/training)."""
    monkeypatch.chdir(tmp_path)
    schedule = dict(optimizer="ScaledAdam", learning_rate=0.045, lr_decay="eden", eden_steps=50)
    params = tiny_params(tmp_path / "model", train_max_steps=4)
    config = write(dict(params, **schedule), tmp_path / "s.json")
    result = run("train", "-p", config, "-d", str(rendered))
    assert result.exit_code == 0, result.output
    losses = validation_losses(result.output)
    assert all(np.isfinite(losses)) and losses[-1] < losses[0], losses
    tensors = _weights(tmp_path / "model", 4)
    kernel = "class_tokens/tokens"
    assert tensors[f"{kernel}/ScaledAdam"].shape == tensors[kernel].shape
    assert tensors[f"{kernel}/ScaledAdam_1"].shape == tensors[kernel].shape
    assert tensors[f"{kernel}/ScaledAdam_2"].shape == () and tensors[f"{kernel}/ScaledAdam_2"] > 0


def test_presence_targets_follow_the_stems_energy_on_real_audio(musdb_stems):
    """A stem is present in a chunk when it holds at least -30 dB of the mixture's energy: the
    excerpt's vocals are; the same chunk without them, or with them 40 dB down, is not."""
    from spleeter.audio.spectrogram import stft
    from spleeter.training.objectives import presence_loss, presence_targets

    def magnitude(wave: np.ndarray) -> np.ndarray:
        return np.abs(stft(wave[: 44100 * 3], 4096, 1024))[None].astype(np.float32)

    vocals, mixture = musdb_stems["vocals"], musdb_stems["mixture"]
    accompaniment = mixture - vocals
    quiet = accompaniment + vocals * 0.01  # -40 dB
    mixes = np.concatenate([magnitude(mixture), magnitude(accompaniment), magnitude(quiet)])
    targets = np.concatenate(
        [magnitude(vocals), np.zeros_like(magnitude(vocals)), magnitude(vocals * 0.01)]
    )
    energy = (targets**2).mean(axis=(1, 2, 3)) / (mixes**2).mean(axis=(1, 2, 3))
    assert energy[0] > 10**-3 > energy[2] and energy[1] == 0
    present = np.asarray(presence_targets(targets, mixes))
    np.testing.assert_array_equal(present, [1.0, 0.0, 0.0])
    # Binary cross-entropy from logits: confident and right is near 0, wrong is large.
    right = float(presence_loss(np.array([9.0, -9.0, -9.0]), targets, mixes))
    wrong = float(presence_loss(np.array([-9.0, 9.0, 9.0]), targets, mixes))
    assert right < 2e-4 and abs(wrong - 9.0) < 1e-3


def test_the_presence_loss_trains_a_head_that_separation_leaves_out(
    rendered, tmp_path, monkeypatch, musdb_excerpt
):
    """``presence_loss_weight``: training adds ``<stem>_presence`` losses and moves the head
    and the class tokens; the separating and exported networks have no such output, and the
    trained folder separates the real excerpt into the four stems."""
    from spleeter.model import build_model

    monkeypatch.chdir(tmp_path)
    config = tiny_params(tmp_path / "model", train_max_steps=3, save_checkpoints_steps=100)
    config["model"]["params"]["presence_loss_weight"] = 0.5
    path = write(config, tmp_path / "presence.json")
    result = run("train", "-p", path, "-d", str(rendered))
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "Validation at step" in line]
    assert lines and all(f"{stem}_presence" in lines[-1] for stem in INSTRUMENTS), lines
    start, end = _weights(tmp_path / "model", 0), _weights(tmp_path / "model", 3)
    for name in ("presence_head/kernel", "class_tokens/tokens"):
        assert not np.array_equal(start[name], end[name]), name
    training = build_model(config, auxiliary=True)
    assert sorted(training.output_names) == sorted(
        [f"{s}_spectrogram" for s in INSTRUMENTS] + [f"{s}_presence" for s in INSTRUMENTS]
    )
    assert sorted(build_model(config).output_names) == sorted(
        f"{s}_spectrogram" for s in INSTRUMENTS
    )
    out = tmp_path / "separated"
    result = run("separate", "-p", str(tmp_path / "model"), "-o", str(out), str(musdb_excerpt))
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in out.rglob("*.wav"))
    assert files == sorted(f"{s}.wav" for s in INSTRUMENTS), files


@pytest.mark.slow
def test_it_trains_through_the_cli_and_resumes_exactly(rendered, tmp_path, monkeypatch):
    """Slow (three runs) and, at this tolerance, not yet reliable on a loaded machine: see the
    resume note in docs/architecture.md."""
    monkeypatch.chdir(tmp_path)
    straight = write(tiny_params(tmp_path / "straight", train_max_steps=4), tmp_path / "a.json")
    result = run("train", "-p", straight, "-d", str(rendered))
    assert result.exit_code == 0, result.output
    validation = validation_losses(result.output)
    assert len(validation) >= 3 and validation[-1] < validation[0], result.output
    # Stopped after 2 steps, then resumed to 4: the checkpoint of 4 straight steps (weights,
    # Adam's slots, step), but not bit for bit as for the U-Net: two runs of the same steps
    # already differ in the last bits of some gradients here (multi-threaded reductions in
    # the attention), and Adam's normalised update turns that into up to ~1e-7 absolute
    # (relative 2e-4 on tiny weights). Known gap, documented in docs/architecture.md.
    split = write(tiny_params(tmp_path / "split", train_max_steps=2), tmp_path / "b.json")
    assert run("train", "-p", split, "-d", str(rendered)).exit_code == 0
    resumed = run("train", "-p", split, "-d", str(rendered), "--max-steps", "4")
    assert resumed.exit_code == 0, resumed.output
    expected, ours = _weights(tmp_path / "straight", 4), _weights(tmp_path / "split", 4)
    assert sorted(expected) == sorted(ours)
    for name, value in expected.items():
        np.testing.assert_allclose(ours[name], value, rtol=1e-3, atol=1e-6, err_msg=name)
    assert int(ours["global_step"]) == int(expected["global_step"]) == 4
    described = json.loads((tmp_path / "split" / "model.json").read_text())
    assert described["model_type"] == "transformer.zipformer" and described["family"] == "mask"


def test_segments_give_the_same_samples_as_one_piece(tiny_model, musdb_stems):
    """Attention stays within each T-frame block, so the segment size changes nothing."""
    from spleeter.separator import Separator

    waveform = musdb_stems["mixture"]
    whole = Separator(tiny_model, multiprocess=False, segment_blocks=None).separate(waveform)
    pieces = Separator(tiny_model, multiprocess=False, segment_blocks=1).separate(waveform)
    for name in INSTRUMENTS:
        assert np.abs(whole[name] - pieces[name]).max() < 1e-6, name
        assert np.abs(whole[name]).max() > 1e-2


def test_onnx_runtime_agrees_with_tensorflow_on_real_audio(tiny_model, musdb_stems, tmp_path):
    from spleeter.separator import Separator

    exported = tmp_path / "exported"
    result = run("export", "-p", tiny_model, "-o", str(exported))
    assert result.exit_code == 0, result.output
    waveform = musdb_stems["mixture"]
    reference = Separator(tiny_model, multiprocess=False, engine="tensorflow").separate(waveform)
    onnx = Separator(str(exported), multiprocess=False, engine="onnx")
    ours = onnx.separate(waveform)
    assert onnx._engine.name == "onnxruntime"
    assert onnx._engine.provider == "CPUExecutionProvider"
    for name in INSTRUMENTS:
        assert np.abs(ours[name] - reference[name]).max() <= 1e-4, name
        assert np.abs(reference[name]).max() > 1e-2
