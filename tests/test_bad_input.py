"""A corpus of damaged and awkward inputs, generated here, each through the command line.

Every case must end with a non-zero exit, one short ``ERROR:spleeter:`` line naming the file,
no traceback, no new file and nothing that existed changed.
"""

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from spleeter import SpleeterError
from spleeter.__main__ import spleeter

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str):
    return CliRunner().invoke(spleeter, list(args))


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` (hidden ones included) with its sha256."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file()
    }


def assert_refused(result, before: dict[str, str], root: Path, *needles: str) -> None:
    """One error line holding every needle, exit 1, no traceback, the tree unchanged."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR:spleeter:")]
    assert result.exit_code == 1, result.stderr
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr and isinstance(result.exception, SystemExit)
    for needle in needles:
        assert needle in errors[0], errors[0]
    assert len(errors[0]) < 300
    assert snapshot(root) == before
    assert not (root / "out").exists() or not any((root / "out").rglob("*"))


def encode(source: Path, target: Path) -> Path:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(source), "-t", "3", str(target)],
        check=True,
    )
    return target


def cut(path: Path, fraction: float) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


@pytest.mark.parametrize("container", ["wav", "mp3", "flac"])
def test_truncated_file_is_refused_with_both_lengths(tiny_4stems, mixture_wav, tmp_path, container):
    song = cut(encode(mixture_wav, tmp_path / f"cut.{container}"), 0.4)
    before = snapshot(tmp_path)
    result = run("separate", "-p", tiny_4stems, "-o", str(tmp_path / "out"), str(song))
    assert_refused(result, before, tmp_path, str(song), "truncated", "declares 3.0")


def test_wav_cut_after_a_few_hundred_bytes(tiny_4stems, mixture_wav, tmp_path):
    song = tmp_path / "download.wav"
    song.write_bytes(mixture_wav.read_bytes()[:400])
    before = snapshot(tmp_path)
    result = run("separate", "-p", tiny_4stems, "-o", str(tmp_path / "out"), str(song))
    assert_refused(result, before, tmp_path, str(song), "truncated")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples_are_refused_with_their_time(tiny_4stems, tmp_path, bad):
    samples = np.zeros((44100, 2), np.float32)
    samples[22050, 1] = bad
    song = tmp_path / "float.wav"
    soundfile.write(song, samples, 44100, subtype="FLOAT")
    before = snapshot(tmp_path)
    result = run("separate", "-p", tiny_4stems, "-o", str(tmp_path / "out"), str(song))
    assert_refused(result, before, tmp_path, str(song), "non-finite", "0.500000 s")


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_fifo_and_device_say_what_they_are(tiny_4stems, tmp_path, kind):
    if kind == "fifo":
        song = tmp_path / "pipe.wav"
        os.mkfifo(song)
        expected = "named pipe (FIFO)"
    else:
        song, expected = Path("/dev/zero"), "character device"
    result = run("separate", "-p", tiny_4stems, "-o", str(tmp_path / "out"), str(song))
    assert_refused(result, snapshot(tmp_path), tmp_path, str(song), expected)


def test_damaged_checkpoint_is_one_line(tiny_4stems, mixture_wav, tmp_path):
    config = _own_model(tiny_4stems, tmp_path)
    model = tmp_path / "model"
    cut(next(model.glob("*.data-*")), 0.5)
    before = snapshot(tmp_path)
    result = run("separate", "-p", str(config), "-o", str(tmp_path / "out"), str(mixture_wav))
    assert_refused(result, before, tmp_path, str(model), "damaged")


def test_file_name_beginning_with_a_dash(tiny_4stems, mixture_wav, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(mixture_wav, tmp_path / "-song.wav")
    result = run("separate", "-p", tiny_4stems, "-o", "-out", "-d", "1", "--", "-song.wav")
    assert result.exit_code == 0, result.stderr
    stems = sorted(p.name for p in (tmp_path / "-out" / "-song").iterdir())
    assert stems == ["bass.wav", "drums.wav", "other.wav", "vocals.wav"]
    assert soundfile.info(tmp_path / "-out" / "-song" / "vocals.wav").frames == 44100


@pytest.fixture(scope="module")
def tiny_separator(tiny_4stems):
    from spleeter.separator import Separator

    return Separator(tiny_4stems, engine="tensorflow")


@settings(
    max_examples=20,
    deadline=None,
    derandomize=True,  # the same examples on every CI run (reproducible)
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    rate=st.sampled_from([8000, 22050, 44100, 48000]),
    channels=st.integers(1, 3),
    frames=st.integers(0, 20000),
    subtype=st.sampled_from(["PCM_16", "PCM_24", "FLOAT"]),
    keep=st.floats(0.0, 1.0),
)
def test_any_wav_is_separated_whole_or_refused(
    tiny_separator, tmp_path_factory, rate, channels, frames, subtype, keep
):
    """Random headers and cut points: finite stems of the right length, or a clean refusal."""
    directory = tmp_path_factory.mktemp("prop")
    song = directory / "song.wav"
    rng = np.random.default_rng(frames)
    soundfile.write(song, rng.uniform(-0.5, 0.5, (frames, channels)), rate, subtype=subtype)
    size = song.stat().st_size
    song.write_bytes(song.read_bytes()[: int(size * keep)] if keep < 0.999 else song.read_bytes())
    before = snapshot(directory)
    out = directory / "out"
    try:
        tiny_separator.separate_to_file(str(song), str(out), duration=None)
    except SpleeterError as error:
        assert "\n" not in str(error) and str(song) in str(error)
        assert snapshot(directory) == before
        return
    # Kept: the whole header-declared length (nothing may be silently dropped).
    expected = round(frames * 44100 / rate)
    for stem in (out / "song").iterdir():
        data, stem_rate = soundfile.read(stem, dtype="float32")
        assert stem_rate == 44100 and np.isfinite(data).all()
        assert abs(data.shape[0] - expected) <= 44100 * 0.1 + 2, (data.shape, expected)


def _long_song(mixture_wav: Path, directory: Path) -> Path:
    """About 3 minutes of the excerpt, long enough to interrupt while stems are written."""
    audio, rate = soundfile.read(mixture_wav, dtype="float32")
    song = directory / "long.wav"
    soundfile.write(song, np.tile(audio, (30, 1)), rate, subtype="PCM_16")
    return song


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM])
def test_signal_during_separation_leaves_nothing(tiny_4stems, mixture_wav, tmp_path, number):
    song = _long_song(mixture_wav, tmp_path)
    out = tmp_path / "out"
    existing = out / "keep.txt"
    out.mkdir()
    existing.write_text("mine")
    before = snapshot(tmp_path)
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "spleeter",
            "separate",
            "-p",
            tiny_4stems,
            "-o",
            str(out),
            str(song),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        # a suite started as a background job ignores SIGINT, and a child inherits that (which
        # spleeter honours, as nohup asks): give the child the default handler to translate
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while not any(p.name.startswith(".") for p in out.rglob("*")):  # stems are being written
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
        time.sleep(0.05)
    time.sleep(0.3)
    process.send_signal(number)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + number, stderr
    assert "Traceback" not in stderr
    assert snapshot(tmp_path) == before
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]


def _own_model(tiny_4stems: str, directory: Path) -> Path:
    """A copy of the tiny model (so that damaging it leaves the session fixture alone)."""
    import json

    config = json.loads(Path(tiny_4stems).read_text())
    model = directory / "model"
    shutil.copytree(config["model_dir"], model)
    config["model_dir"] = str(model)
    (directory / "c.json").write_text(json.dumps(config))
    return directory / "c.json"


def test_damaged_onnx_export_is_rebuilt(tiny_4stems, mixture_wav, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    config = _own_model(tiny_4stems, tmp_path)
    export = tmp_path / "model" / "model.onnx"
    assert run("export", "-p", str(config)).exit_code == 0
    whole = export.read_bytes()
    export.write_bytes(whole[: len(whole) // 2])  # an export cut short
    out = tmp_path / "out"
    result = run(
        "separate", "-p", str(config), "-e", "onnx", "-o", str(out), "-d", "1", str(mixture_wav)
    )
    assert result.exit_code == 0, result.stderr
    assert f"{export} is damaged" in result.stderr
    from spleeter.engines.onnx_export import damage

    assert export.stat().st_size > len(whole) // 2 and damage(export) is None  # rebuilt
    assert len(list((out / "falcon").iterdir())) == 4


@pytest.mark.parametrize("where", ["/proc/spleeter-out/x", "/sys/kernel/spleeter-out"])
@pytest.mark.parametrize("command", ["separate", "export"])
def test_output_folder_that_cannot_be_written(tiny_4stems, mixture_wav, tmp_path, where, command):
    config = _own_model(tiny_4stems, tmp_path)
    before = snapshot(tmp_path)
    extra = [str(mixture_wav)] if command == "separate" else []
    result = run(command, "-p", str(config), "-o", where, *extra)
    assert_refused(result, before, tmp_path, f"Output directory {where} cannot be created")
    assert not Path(where).exists()


def test_sigterm_during_training_saves_a_resumable_checkpoint(tmp_path):
    import tensorflow as tf
    from test_train import fake_dataset, write_config

    csv = fake_dataset(tmp_path)
    model_dir = tmp_path / "model"
    config = write_config(
        tmp_path / "train.json",
        train_csv=str(csv),
        validation_csv=str(csv),
        model_dir=str(model_dir),
        training_cache=str(tmp_path / "cache" / "training"),
        validation_cache=str(tmp_path / "cache" / "validation"),
        train_max_steps=100000,
        save_checkpoints_steps=100000,
    )
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    command = [sys.executable, "-m", "spleeter", "train", "-p", config, "-d", str(tmp_path)]
    log = tmp_path / "train.log"
    with log.open("w") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 180
        while "step 100/" not in log.read_text():  # training is well under way
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)
    stderr = log.read_text()
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert "Traceback" not in stderr and "saving step" in stderr
    prefix = tf.train.latest_checkpoint(str(model_dir))
    assert prefix is not None and not prefix.endswith("-0"), sorted(os.listdir(model_dir))
    assert Path(f"{prefix}.meta").is_file() and tf.train.load_checkpoint(prefix).get_tensor(
        "global_step"
    ) == int(prefix.rsplit("-", 1)[1])
    assert not [p for p in model_dir.iterdir() if p.name.endswith((".tmp", ".part"))]


def test_estimated_duration_is_no_proof_of_truncation(tmp_path):
    """A whole VBR mp3 without a Xing header, silence then noise: ffprobe guesses its length
    from the first frames' bitrate (far too long), so the mismatch must not refuse it."""
    from spleeter.audio.ffmpeg import FFMPEGProcessAudioAdapter, probe_file

    song = tmp_path / "vbr.mp3"
    source = ["-f", "lavfi", "-i", "anoisesrc=d=3:a=0.5", "-af", "adelay=2000|2000", "-ac", "2"]
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", *source, "-write_xing", "0", "-q:a", "9", str(song)],
        check=True,
    )
    waveform, rate = FFMPEGProcessAudioAdapter().load(str(song))
    decoded = waveform.shape[0] / rate
    assert abs(decoded - 5.0) < 0.1
    assert probe_file(str(song))[2] > decoded + 0.5  # the guess that would have refused it
