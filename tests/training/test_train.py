"""``spleeter train``: upstream's training test and what upstream never checked.

Upstream's test trains 10 steps on noise for n_channels 1 and 2 and looks for checkpoint files.
Here training also has to learn (on the real MUSDB excerpt), resume exactly, fine-tune from
another model directory, run in mixed precision and with a BLSTM, and refuse a bad dataset
before any training starts. Configurations are tiny (T = F = 64, U-Net filters 4..32).
"""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
from modelkit import TINY_FILTERS, read_scalars, scalars
from typer.testing import CliRunner

from spleeter.__main__ import spleeter

SAMPLE_RATE = 44100

TRAIN_CONFIG = {
    "mix_name": "mix",
    "instrument_list": ["vocals", "other"],
    "sample_rate": SAMPLE_RATE,
    "frame_length": 4096,
    "frame_step": 1024,
    "T": 64,
    "F": 64,
    "n_channels": 2,
    "chunk_duration": 4,
    "n_chunks_per_song": 1,
    "separation_exponent": 2,
    "mask_extension": "zeros",
    "learning_rate": 1e-4,
    "batch_size": 2,
    "train_max_steps": 10,
    "throttle_secs": 20,
    "save_checkpoints_steps": 100,
    "save_summary_steps": 5,
    "random_seed": 0,
    "model": {
        "type": "unet.unet",
        "params": {
            "conv_activation": "ELU",
            "deconv_activation": "ELU",
            "conv_n_filters": TINY_FILTERS,
        },
    },
}


def run(*args: str):
    return CliRunner().invoke(spleeter, list(args))


def fake_dataset(root: Path, n_channels: int = 2, n_songs: int = 2, duration: int = 6) -> Path:
    """Upstream's fake dataset: seeded uniform noise for every stem, and ``train/train.csv``."""
    rng = np.random.RandomState(seed=0)
    lines = ["mix_path,vocals_path,other_path,duration"]
    for song in range(n_songs):
        directory = root / "train" / f"song{song}"
        directory.mkdir(parents=True, exist_ok=True)
        paths = []
        for stem in ("mix", "vocals", "other"):
            data = rng.rand(duration * SAMPLE_RATE, n_channels) - 0.5
            soundfile.write(directory / f"{stem}.wav", data, SAMPLE_RATE, subtype="PCM_16")
            paths.append(f"train/song{song}/{stem}.wav")
        lines.append(",".join(paths + [str(duration)]))
    csv = root / "train" / "train.csv"
    csv.write_text("\n".join(lines) + "\n")
    return csv


def write_config(path: Path, **changes) -> str:
    config = json.loads(json.dumps(TRAIN_CONFIG))
    config.update(changes)
    path.write_text(json.dumps(config))
    return str(path)


def checkpoint(model_dir: Path, step: int) -> dict[str, np.ndarray]:
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(model_dir / f"model.ckpt-{step}"))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


@pytest.fixture(scope="module")
def noise_data(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("noise")
    return root, fake_dataset(root)


@pytest.mark.parametrize("n_channels", [1, 2])
def test_train(tmp_path, monkeypatch, n_channels):
    """Upstream's test_train: 10 steps for n_channels 1 and 2, through the command line."""
    monkeypatch.chdir(tmp_path)
    csv = fake_dataset(tmp_path, n_channels=n_channels)
    model_dir = tmp_path / f"model_{n_channels}"
    cache = tmp_path / f"cache_{n_channels}"
    write_config(
        Path("useless_config.json"),
        n_channels=n_channels,
        train_csv=str(csv),
        validation_csv=str(csv),
        model_dir=str(model_dir),
        training_cache=str(cache / "training"),
        validation_cache=str(cache / "validation"),
    )
    result = run("train", "-p", "useless_config.json", "-d", str(tmp_path), "--verbose")
    assert result.exit_code == 0, result.output
    for name in ("model.ckpt-10.index", "model.ckpt-0.index", "checkpoint", ".probe"):
        assert (model_dir / name).exists(), name
    assert "Validation at step 10" in result.output
    assert list((cache / "training").glob("*.npz")) and list((cache / "validation").glob("*.npz"))
    tensors = checkpoint(model_dir, 10)
    assert tensors["conv2d/kernel"].shape == (5, 5, n_channels, TINY_FILTERS[0])
    # The output layer keeps upstream's 2 channels; with a mono input the mask broadcasts.
    assert tensors["conv2d_6/kernel"].shape == (4, 4, 1, 2)
    assert int(tensors["global_step"]) == 10
    # The folder describes itself (model.json), as of its latest checkpoint.
    described = json.loads((model_dir / "model.json").read_text())
    assert (described["format"], described["family"], described["task"]) == (
        1,
        "mask",
        "separation",
    )
    assert described["model_type"] == "unet.unet"
    assert described["sources"] == ["vocals", "other"]
    assert described["signal"]["n_channels"] == n_channels and described["signal"]["T"] == 64
    assert "model_dir" not in described["configuration"]
    index = (model_dir / "model.ckpt-10.index").read_bytes()
    assert described["checkpoint"] == {
        "name": "model.ckpt-10",
        "step": 10,
        "fingerprint": hashlib.sha256(index).hexdigest(),
    }
    assert described["training"]["step"] == 10 and described["training"]["command"] == "train"
    assert described["training"]["optimizer"]["name"] == "Adam"
    assert described["versions"]["tensorflow"] and described["versions"]["spleeter"]


def test_training_resumes_exactly(noise_data, tmp_path):
    """6 steps, then a second run to step 10, ends where 10 uninterrupted steps end."""
    root, csv = noise_data
    config = write_config(
        tmp_path / "config.json",
        train_csv=str(csv),
        validation_csv=None,
        model_dir=str(tmp_path / "whole"),
        save_checkpoints_steps=4,
    )
    assert run("train", "-p", config, "-d", str(root), "-q").exit_code == 0
    split = write_config(
        tmp_path / "split.json",
        train_csv=str(csv),
        validation_csv=None,
        model_dir=str(tmp_path / "split"),
        save_checkpoints_steps=4,
    )
    first = run("train", "-p", split, "-d", str(root), "--max-steps", "6")
    assert first.exit_code == 0, first.output
    second = run("train", "-p", split, "-d", str(root), "--max-steps", "10")
    assert second.exit_code == 0, second.output
    assert "Resuming from" in second.output and "(step 6)" in second.output
    whole, resumed = checkpoint(tmp_path / "whole", 10), checkpoint(tmp_path / "split", 10)
    assert sorted(whole) == sorted(resumed)
    for name, value in whole.items():
        np.testing.assert_array_equal(resumed[name], value, err_msg=name)
    assert int(resumed["global_step"]) == 10
    assert int(resumed["spleeter_training/optimizer_iterations"]) == 10
    assert resumed["beta1_power"] == pytest.approx(0.9**11, rel=1e-6)
    assert "conv2d/kernel/Adam" in resumed and "conv2d/kernel/Adam_1" in resumed
    # The dead deepest batch norm is written for upstream's loader.
    assert "batch_normalization_5/moving_mean" in resumed
    # Only the two latest checkpoints are kept.
    state = (tmp_path / "split" / "checkpoint").read_text()
    assert state.splitlines() == [
        'model_checkpoint_path: "model.ckpt-10"',
        'all_model_checkpoint_paths: "model.ckpt-8"',
        'all_model_checkpoint_paths: "model.ckpt-10"',
    ]
    indexes = sorted(p.name for p in (tmp_path / "split").glob("*.index"))
    assert indexes == ["model.ckpt-10.index", "model.ckpt-8.index"]
    # Nothing left to do: a third run changes nothing and succeeds.
    third = run("train", "-p", split, "-d", str(root), "--max-steps", "10")
    assert third.exit_code == 0 and "already trained to step 10" in third.output


def write_musdb_dataset(root: Path, stems: dict[str, np.ndarray]) -> Path:
    """The MUSDB excerpt as a 2-stem dataset: mix = vocals + accompaniment, exactly."""
    accompaniment = stems["drums"] + stems["bass"] + stems["other"]
    sources = {"vocals": stems["vocals"], "accompaniment": accompaniment}
    sources["mix"] = sources["vocals"] + accompaniment
    for name, data in sources.items():
        soundfile.write(root / f"{name}.wav", data, SAMPLE_RATE, subtype="FLOAT")
    duration = len(accompaniment) / SAMPLE_RATE
    csv = root / "musdb.csv"
    csv.write_text(
        f"mix_path,vocals_path,accompaniment_path,duration\n"
        f"mix.wav,vocals.wav,accompaniment.wav,{duration}\n"
    )
    return csv


def sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(reference**2) / np.sum((reference - estimate) ** 2)))


def test_training_learns_on_real_music(musdb_stems, tmp_path):
    """40 steps on the MUSDB excerpt: the loss falls, batch norm statistics move, and the
    model separates vocals far better than the mixture or an untrained half mask."""
    from spleeter.separator import Separator

    csv = write_musdb_dataset(tmp_path, musdb_stems)
    model_dir = tmp_path / "model"
    config = write_config(
        tmp_path / "musdb.json",
        instrument_list=["vocals", "accompaniment"],
        train_csv=str(csv),
        validation_csv=str(csv),
        model_dir=str(model_dir),
        F=128,
        chunk_duration=5.0,
        batch_size=4,
        learning_rate=3e-3,
        train_max_steps=40,
        save_checkpoints_steps=40,
        save_summary_steps=10,
    )
    result = run("train", "-p", config, "-d", str(tmp_path), "-q")
    assert result.exit_code == 0, result.output
    losses = [value for _, value in read_scalars(model_dir)["loss"]]
    assert len(losses) == 4
    assert losses[-1] < 0.85 * losses[0], losses
    validation = read_scalars(model_dir / "eval")
    assert {"loss", "vocals_spectrogram", "accompaniment_spectrogram"} <= set(validation)
    tensors = checkpoint(model_dir, 40)
    for name in ("batch_normalization/moving_mean", "batch_normalization_12/moving_variance"):
        default = 0.0 if name.endswith("mean") else 1.0
        assert np.abs(tensors[name] - default).max() > 1e-3, name
    mixture = soundfile.read(tmp_path / "mix.wav", dtype="float32")[0]
    vocals = soundfile.read(tmp_path / "vocals.wav", dtype="float32")[0]
    estimate = Separator(config, multiprocess=False).separate(mixture)["vocals"]
    # Measured: 0.04 dB, against -7.18 dB for the mixture and -1.85 dB for half of it.
    assert sdr(vocals, estimate) > sdr(vocals, mixture) + 5
    assert sdr(vocals, estimate) > sdr(vocals, 0.5 * mixture) + 1
    # The trained folder alone (its model.json) separates the same, from Python and the CLI.
    from_folder = Separator(str(model_dir), multiprocess=False).separate(mixture)["vocals"]
    np.testing.assert_array_equal(from_folder, estimate)
    result = run(
        "separate", "-p", str(model_dir), "-o", str(tmp_path / "out"), str(tmp_path / "mix.wav")
    )
    assert result.exit_code == 0, result.output
    written = soundfile.read(tmp_path / "out" / "mix" / "vocals.wav", dtype="float32")[0]
    np.testing.assert_allclose(written, estimate, atol=2e-4)


def test_init_from_starts_from_the_given_weights(noise_data, tmp_path):
    """``--init-from``: the step-0 checkpoint holds the source model's weights exactly."""
    from modelkit import write_model

    root, csv = noise_data
    source = json.loads(json.dumps(TRAIN_CONFIG))
    source["model_dir"] = str(tmp_path / "source")
    write_model(source, seed=7)
    config = write_config(
        tmp_path / "tune.json",
        train_csv=str(csv),
        validation_csv=None,
        model_dir=str(tmp_path / "t"),
    )
    args = ("train", "-p", config, "-d", str(root), "--init-from", source["model_dir"])
    result = run(*args, "--max-steps", "0")
    assert result.exit_code == 0, result.output
    original, tuned = checkpoint(tmp_path / "source", 10), checkpoint(tmp_path / "t", 0)
    for name, value in original.items():
        if name != "global_step":
            np.testing.assert_array_equal(tuned[name], value, err_msg=name)
    result = run(*args, "--max-steps", "2")
    assert result.exit_code == 0 and "--init-from" in result.output  # ignored when resuming
    assert not np.array_equal(
        checkpoint(tmp_path / "t", 2)["conv2d/kernel"], original["conv2d/kernel"]
    )
    other = write_config(
        tmp_path / "other.json",
        instrument_list=["vocals", "drums", "other"],
        train_csv=str(csv),
        model_dir=str(tmp_path / "o"),
    )
    result = run("train", "-p", other, "-d", str(root), "--init-from", source["model_dir"])
    assert result.exit_code == 1


UPSTREAM_MODELS = Path(__file__).parents[1] / "fixtures" / "upstream" / "models"


def test_init_from_an_upstream_model_directory(musdb_stems, tmp_path):
    """A model directory written by upstream 2.4.2 (4 stems, F = 1024) seeds a fine-tuning run:
    every tensor of its checkpoint, the dead batch norms included, is in our step-0 one."""
    names = ("mix", "vocals", "drums", "bass", "other")
    for name in names:
        stem = musdb_stems["mixture" if name == "mix" else name]
        soundfile.write(tmp_path / f"{name}.wav", stem, SAMPLE_RATE, subtype="FLOAT")
    csv = tmp_path / "4stems.csv"
    duration = len(musdb_stems["mixture"]) / SAMPLE_RATE
    header = ",".join(f"{name}_path" for name in names)
    csv.write_text(f"{header},duration\n" + ",".join(f"{n}.wav" for n in names) + f",{duration}\n")
    config = json.loads((UPSTREAM_MODELS.parent / "configs" / "unet_4stems.json").read_text())
    config.update(train_csv=str(csv), validation_csv=None, model_dir=str(tmp_path / "tuned"))
    path = tmp_path / "tune.json"
    path.write_text(json.dumps(config))
    source = UPSTREAM_MODELS / "unet_4stems"
    args = ("train", "-p", str(path), "-d", str(tmp_path), "--init-from", str(source))
    result = run(*args, "--max-steps", "0")
    assert result.exit_code == 0, result.output
    original, tuned = checkpoint(source, 400), checkpoint(tmp_path / "tuned", 0)
    assert set(original) <= set(tuned)
    for name, value in original.items():
        if name != "global_step":
            np.testing.assert_array_equal(tuned[name], value, err_msg=name)


def test_mixed_precision_and_blstm_train_on_cpu(noise_data, tmp_path):
    """``--mixed-precision`` on a CPU computes in bfloat16 (no loss scale needed),
    ``--mixed-precision-dtype float16`` with a loss scale; the weights stay float32, model.json
    says which type ran, and the first step's loss (same weights, same batch) is float32's to
    the precision of that type, yet not equal to it (the lower type really computed).
    The BLSTM trains on the CPU."""
    import keras

    root, csv = noise_data
    common = {"train_csv": str(csv), "validation_csv": None, "train_max_steps": 3}
    runs = {
        "float32": ((), 0.0),
        "bfloat16": (("--mixed-precision",), 5e-3),
        "float16": (("--mixed-precision-dtype", "float16"), 5e-3),
    }
    first_loss = {}
    for name, (flags, _) in runs.items():
        model_dir = tmp_path / name
        path = tmp_path / f"{name}.json"
        config = write_config(path, model_dir=str(model_dir), save_summary_steps=1, **common)
        result = run("train", "-p", config, "-d", str(root), *flags)
        assert result.exit_code == 0, result.output
        assert keras.mixed_precision.global_policy().name == "float32"
        tensors = checkpoint(model_dir, 3)
        assert tensors["conv2d/kernel"].dtype == np.float32
        assert all(np.isfinite(v).all() for v in tensors.values() if v.dtype.kind == "f")
        assert ("loss_scale/current_loss_scale" in tensors) == (name == "float16")
        description = json.loads((model_dir / "model.json").read_text())
        assert description["training"]["mixed_precision"] == (None if name == "float32" else name)
        first_loss[name] = scalars(model_dir, "loss")[0]
    for name, (_, tolerance) in runs.items():
        if name != "float32":
            difference = abs(first_loss[name] - first_loss["float32"]) / first_loss["float32"]
            assert 0 < difference < tolerance, (name, first_loss)
    blstm = write_config(
        tmp_path / "blstm.json",
        model_dir=str(tmp_path / "blstm"),
        model={"type": "blstm.blstm", "params": {"lstm_units": 4}},
        **common,
    )
    result = run("train", "-p", blstm, "-d", str(root))
    assert result.exit_code == 0, result.output
    tensors = checkpoint(tmp_path / "blstm", 3)
    assert "bidirectional/forward_cu_dnnlstm/kernel/Adam" in tensors
    assert not np.array_equal(
        tensors["bidirectional/forward_cu_dnnlstm/kernel"],
        checkpoint(tmp_path / "blstm", 0)["bidirectional/forward_cu_dnnlstm/kernel"],
    )


def test_dataset_check_lists_every_bad_row(noise_data, tmp_path):
    """Missing file, short song, mismatched sample rate: one error naming each row, at once."""
    root, _ = noise_data
    rng = np.random.default_rng(0)
    song = root / "train" / "song0"
    soundfile.write(tmp_path / "vocals22k.wav", rng.uniform(-0.5, 0.5, (6 * 22050, 2)), 22050)
    for stem in ("mix", "vocals", "other"):
        soundfile.write(tmp_path / f"short_{stem}.wav", np.zeros((22050, 2)), SAMPLE_RATE)
    rows = [
        "mix_path,vocals_path,other_path,duration",
        f"{song}/mix.wav,{song}/vocals.wav,{song}/other.wav,6",
        f"{song}/mix.wav,{song}/missing.wav,{song}/other.wav,6",
        f"{tmp_path}/short_mix.wav,{tmp_path}/short_vocals.wav,{tmp_path}/short_other.wav,0.5",
        f"{song}/mix.wav,{tmp_path}/vocals22k.wav,{song}/other.wav,6",
    ]
    csv = tmp_path / "bad.csv"
    csv.write_text("\n".join(rows) + "\n")
    model_dir = tmp_path / "model"
    config = write_config(
        tmp_path / "c.json", train_csv=str(csv), validation_csv=None, model_dir=str(model_dir)
    )
    result = run("train", "-p", config, "-d", str(root))
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith("ERROR:spleeter:3 of 4 dataset rows cannot be used for training")
    assert "line 3 " in lines[1] and "vocals_path: file not found" in lines[1]
    assert "line 4 " in lines[2] and "too short: 0.50 s" in lines[2]
    assert "line 5 " in lines[3] and "sample rates differ" in lines[3] and "22050 Hz" in lines[3]
    assert len(lines) == 4
    assert not model_dir.exists()
    csv.write_text("mix_path,vocals_path,duration\n")
    result = run("train", "-p", config, "-d", str(root))
    assert result.exit_code == 1
    assert "lacks column(s) other_path" in result.stderr


def test_configuration_errors(noise_data, tmp_path):
    root, csv = noise_data
    incomplete = tmp_path / "incomplete.json"
    incomplete.write_text(json.dumps({"mix_name": "mix", "instrument_list": ["vocals"]}))
    result = run("train", "-p", str(incomplete), "-d", str(root))
    assert result.exit_code == 1
    assert "lacks train_csv, model_dir, sample_rate" in result.stderr
    odd = write_config(tmp_path / "odd.json", train_csv=str(csv), model_dir="m", T=100)
    result = run("train", "-p", odd, "-d", str(root))
    assert (
        result.exit_code == 1 and "T (100) must be a multiple of 64 for unet.unet" in result.stderr
    )
    long = write_config(tmp_path / "long.json", train_csv=str(csv), model_dir="m", T=256)
    result = run("train", "-p", long, "-d", str(root))
    assert result.exit_code == 1 and "T is too large (256)" in result.stderr


UPSTREAM_PYTHON = Path("/work/upstream-venv/bin/python")

UPSTREAM_SEPARATE = """
import sys
import numpy as np
from spleeter.audio.adapter import AudioAdapter
from spleeter.separator import Separator
waveform, _ = AudioAdapter.default().load(sys.argv[2], sample_rate=44100)
np.savez(sys.argv[3], **Separator(sys.argv[1], multiprocess=False).separate(waveform))
"""


@pytest.mark.slow
def test_upstream_separates_what_we_trained(musdb_stems, tmp_path):
    """Upstream 2.4.2 loads a checkpoint written here and separates like this fork (1e-4)."""
    if not UPSTREAM_PYTHON.exists():
        pytest.skip(f"upstream Spleeter 2.4.2 is not installed ({UPSTREAM_PYTHON} missing)")
    from spleeter.separator import Separator

    csv = write_musdb_dataset(tmp_path, musdb_stems)
    config = write_config(
        tmp_path / "musdb.json",
        instrument_list=["vocals", "accompaniment"],
        train_csv=str(csv),
        validation_csv=None,
        model_dir=str(tmp_path / "model"),
        F=128,
        chunk_duration=5.0,
        train_max_steps=5,
    )
    assert run("train", "-p", config, "-d", str(tmp_path), "-q").exit_code == 0
    script = tmp_path / "upstream_separate.py"
    script.write_text(UPSTREAM_SEPARATE)
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    mixture = str(tmp_path / "mix.wav")
    command = [str(UPSTREAM_PYTHON), str(script), config, mixture, str(tmp_path / "up.npz")]
    completed = subprocess.run(command, cwd=tmp_path, env=environment, capture_output=True)
    assert completed.returncode == 0, completed.stderr.decode()[-2000:]
    theirs = np.load(tmp_path / "up.npz")
    waveform = soundfile.read(mixture, dtype="float32")[0]
    ours = Separator(config, multiprocess=False).separate(waveform)
    for name in ("vocals", "accompaniment"):
        np.testing.assert_allclose(ours[name], theirs[name], atol=1e-4)


@pytest.mark.slow
def test_upstream_training_checkpoint_resumes(noise_data, tmp_path):
    """A run of upstream 2.4.2's own ``spleeter train`` (3 steps, about 3 minutes) resumes
    here with its Adam state: slots, ``beta1_power``/``beta2_power`` and ``global_step``."""
    upstream = UPSTREAM_PYTHON.parent / "spleeter"
    if not upstream.exists():
        pytest.skip(f"upstream Spleeter 2.4.2 is not installed ({upstream} missing)")
    root, csv = noise_data
    model_dir = tmp_path / "model"
    config = write_config(
        tmp_path / "c.json",
        train_csv=str(csv),
        validation_csv=str(csv),
        model_dir=str(model_dir),
        train_max_steps=3,
        training_cache=None,
        validation_cache=None,
    )
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    command = [str(upstream), "train", "-p", config, "-d", str(root)]
    completed = subprocess.run(command, cwd=tmp_path, env=environment, capture_output=True)
    assert completed.returncode == 0, completed.stderr.decode()[-2000:]
    theirs = checkpoint(model_dir, 3)
    assert theirs["beta1_power"] == pytest.approx(0.9**4)
    result = run("train", "-p", config, "-d", str(root), "--max-steps", "5")
    assert result.exit_code == 0, result.output
    assert "(step 3)" in result.output and "starts afresh" not in result.output
    ours = checkpoint(model_dir, 5)
    assert int(ours["global_step"]) == 5
    assert ours["beta1_power"] == pytest.approx(0.9**6)
    assert set(theirs) <= set(ours)
    # The first update applied here started from upstream's moments (they moved on).
    assert not np.array_equal(ours["conv2d/kernel/Adam"], theirs["conv2d/kernel/Adam"])


MIRRORED = """
import sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from spleeter.audio.adapter import AudioAdapter
from spleeter.training import run_training
from spleeter.utils.configuration import load_configuration
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
params = load_configuration(sys.argv[1])
for steps in (4, 6):
    run_training(params, sys.argv[2], AudioAdapter.default(), max_steps=steps, strategy=strategy)
"""


@pytest.mark.slow
def test_mirrored_strategy_on_two_cpu_replicas(noise_data, tmp_path):
    """The distributed step (2 replicas, logical CPUs) trains, checkpoints and resumes."""
    root, csv = noise_data
    config = write_config(
        tmp_path / "m.json",
        train_csv=str(csv),
        validation_csv=str(csv),
        model_dir=str(tmp_path / "m"),
        batch_size=4,
    )
    script = tmp_path / "mirrored.py"
    script.write_text(MIRRORED)
    completed = subprocess.run(
        [sys.executable, str(script), config, str(root)], capture_output=True, cwd=tmp_path
    )
    output = completed.stdout.decode() + completed.stderr.decode()
    assert completed.returncode == 0, output[-3000:]
    assert "Resuming from" in output
    assert int(checkpoint(tmp_path / "m", 6)["global_step"]) == 6


def test_losses_and_optimizers_follow_upstream():
    """L1 (broadcast over a mono target), weighted L1, and TF1's Adam/Adadelta/SGD."""
    from spleeter.engines.tensorflow import import_tensorflow

    import_tensorflow()
    import keras

    from spleeter.training.objectives import loss_function
    from spleeter.training.optimizers import build_optimizer as build
    from spleeter.training.optimizers import optimizer_settings

    def build_optimizer(params):
        return build(optimizer_settings(params))

    rng = np.random.default_rng(0)
    estimate = rng.uniform(0, 1, (2, 4, 3, 2)).astype(np.float32)
    target = rng.uniform(0, 1, (2, 4, 3, 1)).astype(np.float32)
    l1 = float(loss_function({})(estimate, target))
    assert l1 == pytest.approx(np.mean(np.abs(estimate - target)), rel=1e-6)
    weighted = float(loss_function({"loss_type": "weighted_L1_mask"})(estimate, target))
    weights = target.mean(axis=(1, 2, 3), keepdims=True)
    assert weighted == pytest.approx(np.mean(weights * np.abs(estimate - target)), rel=1e-6)
    with pytest.raises(ValueError, match="Unkwnown loss type: L2"):
        loss_function({"loss_type": "L2"})
    adadelta = build_optimizer({"optimizer": "Adadelta", "learning_rate": 5.0})
    assert isinstance(adadelta, keras.optimizers.Adadelta)
    assert float(adadelta.learning_rate) == pytest.approx(0.001)
    assert isinstance(
        build_optimizer({"optimizer": "SGD", "learning_rate": 0.1}), keras.optimizers.SGD
    )
    # Two Adam steps against TF1's update rule (epsilon 1e-8 outside the square root).
    adam = build_optimizer({"learning_rate": 0.01})
    variable = keras.Variable(np.array([1.0, -2.0], dtype=np.float32))
    gradients = [np.array([0.5, -1e-3], np.float32), np.array([0.2, 3.0], np.float32)]
    m = v = np.zeros(2)
    expected = np.array([1.0, -2.0])
    for t, gradient in enumerate(gradients, start=1):
        adam.apply_gradients([(gradient, variable)])
        m, v = 0.9 * m + 0.1 * gradient, 0.999 * v + 0.001 * gradient**2
        rate = 0.01 * np.sqrt(1 - 0.999**t) / (1 - 0.9**t)
        expected = expected - rate * m / (np.sqrt(v) + 1e-8)
    np.testing.assert_allclose(variable.numpy(), expected, rtol=1e-6)
