"""The ``spleeter`` command line, through typer's CliRunner and as a real console script."""

import json
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest
import soundfile
from typer.testing import CliRunner

from spleeter.__main__ import spleeter

INSTRUMENTS = ["bass", "drums", "other", "vocals"]


def run(*args: str):
    return CliRunner().invoke(spleeter, list(args))


def files_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("ERROR:spleeter:")]


def test_version():
    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"Spleeter Version: {version('spleeter')}"


def test_help_flags():
    assert "separate" in run("--help").stdout
    assert "--params_filename" in run("separate", "-h").stdout


def test_removed_inputs_option_exits_20(mixture_wav):
    result = run("separate", "-i", str(mixture_wav), str(mixture_wav))
    assert result.exit_code == 20
    assert "-i option is not supported anymore" in result.stderr


def test_separate_writes_16bit_stems(tiny_4stems, mixture_wav, tmp_path):
    result = run("separate", "-p", tiny_4stems, "-o", str(tmp_path), str(mixture_wav))
    assert result.exit_code == 0, result.output
    assert files_under(tmp_path) == [f"falcon/{name}.wav" for name in INSTRUMENTS]
    for name in INSTRUMENTS:
        assert (
            f"INFO:spleeter:File {tmp_path}/falcon/{name}.wav written succesfully" in result.stdout
        )
        info = soundfile.info(tmp_path / "falcon" / f"{name}.wav")
        assert (info.samplerate, info.channels, info.subtype) == (44100, 2, "PCM_16")
        assert info.frames == soundfile.info(mixture_wav).frames


def test_offset_duration_and_filename_format(tiny_4stems, mixture_wav, tmp_path):
    result = run(
        "separate",
        "-p",
        tiny_4stems,
        "-o",
        str(tmp_path),
        "-s",
        "1.5",
        "-d",
        "2",
        "-f",
        "{foldername}/{filename}_{instrument}.{codec}",
        str(mixture_wav),
    )
    assert result.exit_code == 0, result.output
    folder = mixture_wav.parent.name
    assert files_under(tmp_path) == [f"{folder}/falcon_{name}.wav" for name in INSTRUMENTS]
    assert soundfile.info(tmp_path / folder / "falcon_vocals.wav").frames == 2 * 44100


@pytest.mark.parametrize("codec", ["wav", "flac", "mp3", "ogg", "m4a", "wma"])
def test_every_codec(tiny_4stems, mixture_wav, tmp_path, codec):
    result = run(
        "separate",
        "-p",
        tiny_4stems,
        "-o",
        str(tmp_path),
        "-d",
        "1",
        "-c",
        codec,
        "-b",
        "96k",
        str(mixture_wav),
    )
    assert result.exit_code == 0, result.output
    assert files_under(tmp_path) == [f"falcon/{name}.{codec}" for name in INSTRUMENTS]
    probe = json.loads(
        subprocess.run(
            [
                "ffprobe",
                "-v",
                "error",
                "-show_streams",
                "-of",
                "json",
                str(tmp_path / "falcon" / f"vocals.{codec}"),
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )["streams"][0]
    assert int(probe["sample_rate"]) == 44100 and probe["channels"] == 2
    expected_codec = {
        "wav": "pcm_s16le",
        "flac": "flac",
        "mp3": "mp3",
        "ogg": "vorbis",
        "m4a": "aac",
        "wma": "wmav2",
    }
    assert probe["codec_name"] == expected_codec[codec]


def test_mwf_option(tiny_4stems, mixture_wav, tmp_path):
    plain, wiener = tmp_path / "plain", tmp_path / "wiener"
    assert (
        run("separate", "-p", tiny_4stems, "-o", str(plain), "-d", "2", str(mixture_wav)).exit_code
        == 0
    )
    result = run(
        "separate", "-p", tiny_4stems, "-o", str(wiener), "-d", "2", "--mwf", str(mixture_wav)
    )
    assert result.exit_code == 0, result.output
    a, _ = soundfile.read(plain / "falcon" / "vocals.wav")
    b, _ = soundfile.read(wiener / "falcon" / "vocals.wav")
    assert a.shape == b.shape and np.abs(a - b).max() > 1e-3


def bad_inputs(directory: Path) -> dict[str, tuple[Path, str]]:
    text = directory / "notes.mp3"
    text.write_text("this is not audio\n" * 20)
    empty = directory / "empty.wav"
    empty.write_bytes(b"")
    truncated = directory / "truncated.wav"
    soundfile.write(truncated, np.zeros((44100, 2), np.float32), 44100, subtype="PCM_16")
    truncated.write_bytes(truncated.read_bytes()[:44])
    return {
        "missing": (directory / "missing.mp3", "file not found"),
        "text": (text, "not a readable audio file"),
        "empty": (empty, "empty file"),
        "truncated": (truncated, "no audio samples"),
    }


@pytest.mark.parametrize("case", ["missing", "text", "empty", "truncated"])
def test_bad_input_file(tiny_4stems, tmp_path, case):
    path, problem = bad_inputs(tmp_path)[case]
    out = tmp_path / "out"
    result = run("separate", "-p", tiny_4stems, "-o", str(out), str(path))
    assert result.exit_code == 1
    errors = error_lines(result)
    assert len(errors) == 1 and str(path) in errors[0] and problem in errors[0], result.stderr
    assert not out.exists() or files_under(out) == []


def test_good_files_are_separated_despite_a_bad_one(tiny_4stems, mixture_wav, tmp_path):
    missing = tmp_path / "missing.wav"
    result = run(
        "separate",
        "-p",
        tiny_4stems,
        "-o",
        str(tmp_path / "out"),
        "-d",
        "1",
        str(missing),
        str(mixture_wav),
    )
    assert result.exit_code == 1
    assert len(error_lines(result)) == 1 and str(missing) in result.stderr
    assert files_under(tmp_path / "out") == [f"falcon/{name}.wav" for name in INSTRUMENTS]


def test_output_path_that_is_a_file(tiny_4stems, mixture_wav, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("keep me")
    result = run("separate", "-p", tiny_4stems, "-o", str(blocker / "out"), str(mixture_wav))
    assert result.exit_code == 1
    assert error_lines(result) == [
        f"ERROR:spleeter:Output directory {blocker / 'out'} cannot be created: "
        f"{blocker} is not a directory"
    ]
    assert blocker.read_text() == "keep me"


def test_config_that_does_not_parse(mixture_wav, tmp_path):
    config = tmp_path / "broken.json"
    config.write_text('{"model_dir": ')
    result = run("separate", "-p", str(config), "-o", str(tmp_path / "out"), str(mixture_wav))
    assert result.exit_code == 1
    errors = error_lines(result)
    assert len(errors) == 1 and "broken.json is not valid JSON" in errors[0]
    assert not (tmp_path / "out").exists()


def test_model_directory_without_checkpoint(tiny_4stems, mixture_wav, tmp_path):
    config = json.loads(Path(tiny_4stems).read_text())
    empty_model = tmp_path / "empty_model"
    empty_model.mkdir()
    config["model_dir"] = str(empty_model)
    path = tmp_path / "c.json"
    path.write_text(json.dumps(config))
    result = run("separate", "-p", str(path), "-o", str(tmp_path / "out"), str(mixture_wav))
    assert result.exit_code == 1
    assert error_lines(result) == [
        f"ERROR:spleeter:Model directory {empty_model} has no checkpoint (expected a 'checkpoint' "
        "file and model files such as model.index / model.data-00000-of-00001)"
    ]
    assert not (tmp_path / "out").exists()


def test_console_script_and_module(tmp_path):
    """The installed ``spleeter`` script and ``python -m spleeter`` run and fail with a status."""
    script = shutil.which("spleeter")
    assert script, "the spleeter console script is not installed"
    version_run = subprocess.run(
        [sys.executable, "-m", "spleeter", "--version"], capture_output=True, text=True
    )
    assert version_run.returncode == 0 and version_run.stdout.startswith("Spleeter Version: ")
    failing = subprocess.run(
        [script, "separate", "-p", "spleeter:9stems", str(tmp_path / "x.wav")],
        capture_output=True,
        text=True,
    )
    assert failing.returncode == 1
    from spleeter.utils.configuration import embedded_configuration_names

    known = ", ".join(embedded_configuration_names())
    assert "2stems, 2stems-16kHz" in known and known.endswith("musdb")
    assert failing.stderr.strip().splitlines() == [
        f"ERROR:spleeter:No embedded configuration 9stems found (known: {known})"
    ]
