"""Issue 17's options and rough edges, through the command line on real audio (the MUSDB
excerpt): stems chosen, bit depths and sample rates read back with soundfile, clipping,
--shifts/--overlap, the progress bar in a pseudo-terminal, help, config show, model folder
modes and export freshness."""

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
from typer.testing import CliRunner

from spleeter.__main__ import spleeter

ROOT = Path(__file__).resolve().parents[1]
INSTRUMENTS = ["vocals", "drums", "bass", "other"]
DURATION = "3"
"""Seconds separated per run: enough for real audio, short enough for 2 shared cores."""


def run(*args: str):
    return CliRunner().invoke(spleeter, list(args))


def separate(config: str, audio: Path, out: Path, *options: str):
    result = run(
        "separate",
        "-p",
        config,
        "-e",
        "tensorflow",
        "-d",
        DURATION,
        "-o",
        str(out),
        *options,
        str(audio),
    )
    assert result.exit_code == 0, result.output
    return result


def read(path: Path) -> np.ndarray:
    return soundfile.read(path, dtype="float32", always_2d=True)[0]


def errors(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("ERROR:spleeter:")]


@pytest.fixture(scope="module")
def four_stems(tiny_4stems, mixture_wav, tmp_path_factory) -> Path:
    """All four stems of the excerpt's first 3 s, as float32 WAV."""
    out = tmp_path_factory.mktemp("four")
    separate(tiny_4stems, mixture_wav, out, "--float32")
    return out / "falcon"


def test_two_stems_sum_to_all_stems(tiny_4stems, mixture_wav, four_stems, tmp_path):
    """vocals + no_vocals = the sum of the four stems of the same (deterministic) separation.

    Written as float32 the only difference is float32 rounding of a sum of three stems
    (|x| < 2, so < 3 * 2**-23 * 2 ~ 1e-6): tolerance 1e-5. (Against the mixture itself the
    stems do not sum back exactly: the model's masks cover only its F = 1024 bins, up to 11 kHz,
    and mask_extension "zeros" drops what is above.)
    """
    separate(tiny_4stems, mixture_wav, tmp_path, "--two-stems", "vocals", "--float32")
    written = sorted(p.name for p in (tmp_path / "falcon").iterdir())
    assert written == ["no_vocals.wav", "vocals.wav"]
    vocals, rest = read(tmp_path / "falcon" / "vocals.wav"), read(tmp_path / "falcon/no_vocals.wav")
    stems = {name: read(four_stems / f"{name}.wav") for name in INSTRUMENTS}
    assert vocals.shape == rest.shape == stems["vocals"].shape == (3 * 44100, 2)
    np.testing.assert_array_equal(vocals, stems["vocals"])
    np.testing.assert_allclose(vocals + rest, sum(stems.values()), rtol=0, atol=1e-5)
    assert np.abs(rest).max() > 0.01  # a real sum, not silence


def test_two_stems_16bit_within_quantisation(tiny_4stems, mixture_wav, four_stems, tmp_path):
    """Default 16-bit files: each file is rounded to the nearest 1/32768, so vocals + no_vocals
    differs from the float sum of four stems by at most 2 half-steps (plus float32 noise)."""
    separate(tiny_4stems, mixture_wav, tmp_path, "--two-stems", "vocals")
    assert soundfile.info(tmp_path / "falcon" / "vocals.wav").subtype == "PCM_16"
    total = read(tmp_path / "falcon/vocals.wav") + read(tmp_path / "falcon/no_vocals.wav")
    expected = np.clip(sum(read(four_stems / f"{n}.wav") for n in INSTRUMENTS), -2, 2)
    assert np.abs(total - expected).max() <= 2 * 0.5 / 32768 + 1e-6


def test_stems_subset_and_unknown_name(tiny_4stems, mixture_wav, four_stems, tmp_path):
    separate(tiny_4stems, mixture_wav, tmp_path, "--stems", "drums,vocals", "--float32")
    assert sorted(p.name for p in (tmp_path / "falcon").iterdir()) == ["drums.wav", "vocals.wav"]
    np.testing.assert_array_equal(
        read(tmp_path / "falcon/drums.wav"), read(four_stems / "drums.wav")
    )
    bad = run(
        "separate",
        "-p",
        tiny_4stems,
        "-o",
        str(tmp_path / "bad"),
        "--stems",
        "voice",
        str(mixture_wav),
    )
    assert bad.exit_code == 1
    assert errors(bad) == [
        "ERROR:spleeter:unknown source(s) voice: this model gives vocals, drums, bass, other"
    ]
    assert not (tmp_path / "bad").exists() or not any((tmp_path / "bad").rglob("*.wav"))


@pytest.mark.parametrize(
    ("options", "subtype", "rate"),
    [
        ((), "PCM_16", 44100),
        (("--int24",), "PCM_24", 44100),
        (("--int24", "-c", "flac"), "PCM_24", 44100),
        (("--float32", "--sample-rate", "22050"), "FLOAT", 22050),
    ],
)
def test_bit_depth_and_sample_rate(
    tiny_4stems, mixture_wav, four_stems, tmp_path, options, subtype, rate
):
    separate(tiny_4stems, mixture_wav, tmp_path, "--stems", "vocals", *options)
    codec = "flac" if "flac" in options else "wav"
    path = tmp_path / "falcon" / f"vocals.{codec}"
    info = soundfile.info(path)
    assert (info.subtype, info.samplerate, info.channels) == (subtype, rate, 2)
    assert abs(info.frames - 3 * rate) <= 1
    if rate == 44100:  # same samples as the float32 run, up to the format's quantisation
        step = {"PCM_16": 2**-15, "PCM_24": 2**-23}[subtype]
        reference = np.clip(read(four_stems / "vocals.wav"), -1, 1)
        assert np.abs(read(path) - reference).max() <= step


def test_bit_depth_refused_for_lossy_codec(tiny_4stems, mixture_wav, tmp_path):
    result = run(
        "separate",
        "-p",
        tiny_4stems,
        "-o",
        str(tmp_path),
        "--float32",
        "-c",
        "mp3",
        str(mixture_wav),
    )
    assert result.exit_code == 1
    assert errors(result) == [
        "ERROR:spleeter:--float32 needs -c wav (got -c mp3: a lossy codec has no bit depth)"
    ]
    assert not list(tmp_path.rglob("*.mp3"))


@pytest.fixture(scope="module")
def loud_wav(musdb_stems, tmp_path_factory) -> Path:
    """The mixture at 4 times its level, as float32 WAV: peaks well past full scale."""
    path = tmp_path_factory.mktemp("loud") / "loud.wav"
    soundfile.write(path, 4 * musdb_stems["mixture"][: 3 * 44100], 44100, subtype="FLOAT")
    return path


def test_clip_modes(tiny_4stems, loud_wav, tmp_path):
    outputs = {}
    for mode in ("none", "clamp", "rescale"):
        result = separate(tiny_4stems, loud_wav, tmp_path / mode, "--float32", "--clip-mode", mode)
        outputs[mode] = {n: read(tmp_path / mode / "loud" / f"{n}.wav") for n in INSTRUMENTS}
        if mode == "clamp":
            assert "samples past full scale clipped" in result.stderr
    loud = [name for name in INSTRUMENTS if np.abs(outputs["none"][name]).max() > 1.2]
    assert loud  # the float file keeps what is past full scale
    for name, unclipped in outputs["none"].items():
        peak = np.abs(unclipped).max()
        np.testing.assert_array_equal(outputs["clamp"][name], np.clip(unclipped, -1, 1))
        rescaled = outputs["rescale"][name]
        scale = 1 / max(1.01 * peak, 1)  # Demucs' rescale: the whole stem, only when needed
        np.testing.assert_allclose(rescaled, unclipped * scale, rtol=1e-5, atol=1e-7)
        assert np.abs(rescaled).max() < 1


def test_shifts_and_overlap_finite_right_length(tiny_4stems, mixture_wav, four_stems, tmp_path):
    plain = read(four_stems / "vocals.wav")
    for options in (("--shifts", "2"), ("--overlap", "0.5")):
        out = tmp_path / options[0].strip("-")
        separate(tiny_4stems, mixture_wav, out, "--stems", "vocals", "--float32", *options)
        vocals = read(out / "falcon" / "vocals.wav")
        assert vocals.shape == plain.shape == (3 * 44100, 2)
        assert np.isfinite(vocals).all()
        # an average of other separations: close to the plain one, not equal to it
        assert np.abs(vocals - plain).max() > 0
        assert np.corrcoef(vocals[:, 0], plain[:, 0])[0, 1] > 0.5  # (a random tiny model)


def test_shifted_runs_are_undone_exactly():
    """With a family that passes the mixture through, every delayed run gives the input back:
    the average over shifts and grids is the input (delays are undone sample-exactly)."""
    from spleeter.separation.pipeline import SeparationPipeline
    from spleeter.separation.shifts import AveragedPipeline

    class Identity:
        passes = 1

        def sources(self):
            return ["all"]

        def separate(self, spectrum):
            return {"all": spectrum}

    class Family:
        named_sources = True

        def declared_sources(self):
            return ["all"]

        def track(self):
            return Identity()

    params = {"frame_length": 4096, "frame_step": 1024, "T": 8}
    rng = np.random.default_rng(1)
    waveform = rng.uniform(-0.5, 0.5, (50_000, 2)).astype(np.float32)
    for shifts, overlap in ((3, 0.0), (1, 0.75), (2, 0.5)):
        pipeline = AveragedPipeline(SeparationPipeline(params, Family(), 2), 44100, shifts, overlap)
        position = [0]

        def read(n, position=position):
            chunk = waveform[position[0] : position[0] + n]
            position[0] += len(chunk)
            return chunk

        separation = pipeline.run(read)
        out = np.concatenate([piece["all"] for piece in separation.pieces])
        assert out.shape == waveform.shape
        np.testing.assert_allclose(out, waveform, atol=1e-5)


def test_help_shows_no_bool_for_flags():
    text = run("separate", "--help").stdout
    assert "--mwf" in text and "--float32" in text
    assert "<bool>" not in text


def test_params_did_you_mean(mixture_wav, tmp_path):
    result = run("separate", "-p", "4stems", "-o", str(tmp_path), str(mixture_wav))
    assert result.exit_code == 1
    assert errors(result) == [
        "ERROR:spleeter:Configuration file 4stems not found; did you mean spleeter:4stems?"
    ]


def test_config_show_prints_the_bundled_file():
    result = run("config", "show", "spleeter:4stems")
    assert result.exit_code == 0, result.output
    bundled = (ROOT / "spleeter" / "resources" / "4stems.json").read_text()
    assert result.stdout == bundled
    assert json.loads(result.stdout)["instrument_list"] == ["vocals", "drums", "bass", "other"]
    assert "spleeter:4stems" in run("config", "list").stdout.split()
    missing = run("config", "show", "spleeter:6stems")
    assert missing.exit_code == 1 and "No embedded configuration 6stems" in missing.stderr


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_model_folder_follows_umask(tmp_path, umask):
    from spleeter.model.provider import ModelProvider

    class Local(ModelProvider):
        def download(self, name, path):
            Path(path, "checkpoint").write_text("x")

    previous = os.umask(umask)
    try:
        target = tmp_path / "store" / "4stems"
        Local().get(str(target))
    finally:
        os.umask(previous)
    assert (target.stat().st_mode & 0o777) == 0o777 & ~umask


@pytest.mark.slow  # two ONNX conversions: about a minute on two shared cores
def test_export_is_skipped_when_current(tiny_4stems, tmp_path, monkeypatch):
    out = tmp_path / "exported"
    first = run("export", "-p", tiny_4stems, "-o", str(out))
    assert first.exit_code == 0, first.output
    onnx_file = out / "model.onnx"
    stamp = onnx_file.stat().st_mtime_ns
    again = run("export", "-p", tiny_4stems, "-o", str(out))
    assert again.exit_code == 0, again.output
    assert "is current (same network, weights and opset): not converting again" in again.stdout
    assert onnx_file.stat().st_mtime_ns == stamp
    import spleeter.engines.onnx_export as onnx_export

    calls = []
    real = onnx_export.export_onnx
    monkeypatch.setattr(
        onnx_export, "export_onnx", lambda *a, **k: calls.append(a) or real(*a, **k)
    )
    forced = run("export", "-p", tiny_4stems, "-o", str(out), "--force")
    assert forced.exit_code == 0, forced.output
    assert len(calls) == 1 and "ONNX model written to" in forced.stdout
    assert "is current" not in forced.stdout


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def test_progress_bar_in_a_terminal(tiny_4stems, musdb_stems, tmp_path):
    """``spleeter separate`` in a pseudo-terminal: one-decimal seconds, never past 100 %, the
    bar cleared before each log line, and the summary line at the end."""
    song = tmp_path / "song.wav"  # 14 s: two 12 s segments, so the bar moves twice
    soundfile.write(song, np.tile(musdb_stems["mixture"], (3, 1))[: 14 * 44100], 44100)
    command = [
        sys.executable,
        "-m",
        "spleeter",
        "separate",
        "-p",
        tiny_4stems,
        "-e",
        "tensorflow",
        "-o",
        str(tmp_path / "out"),
        str(song),
    ]
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100"}
    main, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))  # 100 columns
    process = subprocess.Popen(
        command,
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        env=environment,
        close_fds=True,
    )
    os.close(secondary)
    chunks = []
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        ready, _, _ = select.select([main], [], [], 1)
        if ready:
            try:
                data = os.read(main, 4096)
            except OSError:  # the terminal closed: the process is done
                break
            if not data:
                break
            chunks.append(data)
        elif process.poll() is not None:
            break
    os.close(main)
    assert process.wait(timeout=30) == 0
    text = ANSI.sub("", b"".join(chunks).decode(errors="replace"))
    segments = [s for s in re.split(r"[\r\n]", text) if s.strip()]
    bars = [s for s in segments if "song.wav:" in s and "%|" in s]
    assert bars, text
    for bar in bars:
        assert not re.search(r"\d+\.\d{3,}", bar), bar  # no float noise
        percent = int(re.search(r"(\d+)%\|", bar).group(1))
        done, total = map(float, re.search(r"\| (\d+\.\d)/(\d+\.\d) s", bar).groups())
        assert percent <= 100 and done <= total == 14.0, bar
        assert "-" not in bar.split("<")[-1], bar  # no negative time left
    assert any(b.split("|")[2].strip().startswith("14.0/14.0") for b in bars), bars
    logs = [s for s in segments if "INFO:spleeter:" in s]
    assert all(s.startswith("INFO:spleeter:") for s in logs), logs  # never glued to a bar
    assert sum("written succesfully" in s for s in logs) == 4
    summary = [s for s in logs if s.startswith("INFO:spleeter:Separated 1 file:")]
    assert len(summary) == 1 and re.search(
        r"4 stems, 14\.0 s of audio in \d+\.\d s, real-time factor \d+\.\d\d", summary[0]
    ), logs


def test_shifts_reach_cluster_jobs_and_keep_old_manifests_valid():
    from spleeter.batch.job import Job

    plain = Job("spleeter:4stems", "out", "{filename}/{instrument}.{codec}")
    assert "shifts" not in json.loads(plain.settings())  # rows written before stay "done"
    shifted = Job("spleeter:4stems", "out", "f", shifts=2, stems=("vocals",), sample_format="int24")
    settings = json.loads(shifted.settings())
    assert (settings["shifts"], settings["stems"], settings["sample_format"]) == (
        2,
        ["vocals"],
        "int24",
    )
    assert str(shifted.output_format().sample_format) == "int24"


def test_install_hints_name_this_project():
    """PyPI's "spleeter" is upstream: no hint, in the README, the docs or an error, installs it."""
    from spleeter.utils.extras import install_hint

    texts = [(ROOT / "README.md").read_text()]
    texts += [path.read_text() for path in (ROOT / "docs").glob("*.md")]
    for text in texts:
        assert "pip install 'spleeter[" not in text and 'pip install "spleeter[' not in text
    assert "git clone" in texts[0]
    assert install_hint("gpu").startswith('pip install ".[gpu]" in this project')
