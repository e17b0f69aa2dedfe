"""Catalogue separation on a local cluster of two worker processes.

One test starts its own (``--workers 2``); the others share one module-wide cluster through
``--scheduler`` (the path of an existing cluster), which keeps TensorFlow imports, the slow
part, to two processes.

Workers compute with one thread each, the sequential reference with all cores: float sums in
another order can move a 16-bit sample by one step, so outputs are compared to within that.
"""

import json
import os
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import soundfile
from cluster_adapters import BROKEN_MARKER, KILL_MARKER
from typer.testing import CliRunner

from spleeter.__main__ import spleeter
from spleeter.batch.job import sha256
from spleeter.batch.manifest import MANIFEST_NAME

pytest.importorskip("distributed")

INSTRUMENTS = ["bass", "drums", "other", "vocals"]
TESTS = Path(__file__).parent


def run(*args: str):
    return CliRunner().invoke(spleeter, list(args))


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("ERROR:spleeter:")]


def audio_files(root: Path) -> list[str]:
    """Every file under ``root`` but the manifest (hidden temporaries included)."""
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.name != MANIFEST_NAME
    )


def manifest_rows(output: Path) -> dict[str, dict]:
    with sqlite3.connect(output / MANIFEST_NAME) as db:
        db.row_factory = sqlite3.Row
        return {Path(row["input"]).stem: dict(row) for row in db.execute("SELECT * FROM files")}


@pytest.fixture(scope="module")
def kill_marker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("kill") / "killed"


@pytest.fixture(scope="module")
def scheduler(kill_marker: Path):
    """The address of a two-worker process cluster whose workers import ``cluster_adapters``."""
    from distributed import LocalCluster

    env = {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])),
        "TF_NUM_INTRAOP_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "GITHUB_HOST": "http://127.0.0.1:9",
        KILL_MARKER: str(kill_marker),
    }
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, env=env
    ) as cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory, mixture_wav: Path) -> Path:
    """Three copies of the 6-s MUSDB excerpt's mixture (one named to be killed in)."""
    directory = tmp_path_factory.mktemp("catalogue")
    for name in ("a", "b", "victim"):
        shutil.copy(mixture_wav, directory / f"{name}.wav")
    return directory


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, tiny_4stems: str, catalogue: Path):
    """The sequential run's outputs: ``{"a/vocals.wav": samples}``."""
    output = tmp_path_factory.mktemp("sequential")
    result = run("separate", "-p", tiny_4stems, "-o", str(output), str(catalogue))
    assert result.exit_code == 0, result.output
    return {name: soundfile.read(output / name, dtype="int16")[0] for name in audio_files(output)}


def assert_equal_to(reference: dict, output: Path, names: list[str]) -> None:
    expected = [f"{name}/{instrument}.wav" for name in names for instrument in INSTRUMENTS]
    assert audio_files(output) == expected  # nothing else: no temporary, no extra file
    for name in expected:
        samples = soundfile.read(output / name, dtype="int16")[0].astype(int)
        assert samples.shape == reference[name].shape, name
        assert np.abs(samples - reference[name]).max() <= 1, name


def test_two_workers_equal_the_sequential_run_and_resume(
    tiny_4stems, catalogue, reference, tmp_path, scheduler
):
    output = tmp_path / "out"
    args = ("separate", "-p", tiny_4stems, "--workers", "2", "-o", str(output), str(catalogue))
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert_equal_to(reference, output, ["a", "b", "victim"])
    rows = manifest_rows(output)
    assert sorted(rows) == ["a", "b", "victim"]
    for row in rows.values():
        assert (row["state"], row["attempts"], row["error"]) == ("done", 1, None)
        assert row["worker"].startswith("tcp://") and row["seconds"] > 0
        assert row["audio_seconds"] == pytest.approx(6.08, abs=0.01)
        checksums = json.loads(row["checksums"])
        assert sorted(checksums) == sorted(json.loads(row["outputs"]).values())
        assert all(sha256(path) == digest for path, digest in checksums.items())
    assert "Separated 3 file(s), skipped 0, failed 0" in result.stdout

    # a re-run separates nothing; one with a lost output separates that input only
    written = {name: (output / name).stat().st_mtime_ns for name in audio_files(output)}
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert "Separated 0 file(s), skipped 3, failed 0" in result.stdout
    assert {name: (output / name).stat().st_mtime_ns for name in audio_files(output)} == written
    (output / "b" / "drums.wav").unlink()
    result = run(*args[:3], "--scheduler", scheduler, *args[5:])  # same run, existing cluster
    assert result.exit_code == 0, result.output
    assert "Separated 1 file(s), skipped 2, failed 0" in result.stdout
    assert {name: row["attempts"] for name, row in manifest_rows(output).items()} == {
        "a": 1,
        "b": 2,
        "victim": 1,
    }
    assert_equal_to(reference, output, ["a", "b", "victim"])


def test_a_worker_killed_in_the_middle_of_a_file_loses_nothing(
    tiny_4stems, catalogue, reference, tmp_path, scheduler, kill_marker
):
    marker = kill_marker
    output = tmp_path / "out"
    result = run(
        "separate", "-p", tiny_4stems, "--scheduler", scheduler, "-o", str(output), str(catalogue),
        "--adapter", "cluster_adapters.KillingAdapter",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert marker.exists()  # a worker did die with victim's stems half-written
    assert_equal_to(reference, output, ["a", "b", "victim"])  # no .part file left over
    assert {row["state"] for row in manifest_rows(output).values()} == {"done"}


def test_a_bad_file_fails_alone_and_is_retried_by_the_next_run(
    tiny_4stems, catalogue, reference, tmp_path, scheduler
):
    music = tmp_path / "music"
    music.mkdir()
    shutil.copy(catalogue / "a.wav", music / "a.wav")
    (music / "victim.wav").write_text("not audio")
    output = tmp_path / "out"
    args = ("separate", "-p", tiny_4stems, "--scheduler", scheduler, "-o", str(output), str(music))
    result = run(*args)
    assert result.exit_code == 1
    errors = error_lines(result)
    assert len(errors) == 1 and str(music / "victim.wav") in errors[0], result.output
    assert_equal_to(reference, output, ["a"])
    rows = manifest_rows(output)
    assert rows["a"]["state"] == "done"
    assert rows["victim"]["state"] == "failed" and "victim.wav" in rows["victim"]["error"]

    shutil.copy(catalogue / "victim.wav", music / "victim.wav")  # repaired
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert "Separated 1 file(s), skipped 1, failed 0" in result.stdout
    assert_equal_to(reference, output, ["a", "victim"])
    assert manifest_rows(output)["victim"]["attempts"] == 2


def test_an_unreachable_scheduler_is_one_line_and_no_output(tiny_4stems, catalogue, tmp_path):
    output = tmp_path / "out"
    result = run(
        "separate", "-p", tiny_4stems, "--scheduler", "tcp://127.0.0.1:9",
        "-o", str(output), str(catalogue / "a.wav"),
    )  # fmt: skip
    assert result.exit_code == 1
    errors = error_lines(result)
    assert len(errors) == 1, result.output
    assert errors[0].startswith(
        "ERROR:spleeter:cannot reach the Dask scheduler at tcp://127.0.0.1:9"
    )
    assert not output.exists() or list(output.rglob("*")) == []


def test_workers_that_cannot_load_the_model(tiny_4stems, catalogue, tmp_path):
    config = json.loads(Path(tiny_4stems).read_text())
    config["model_dir"] = str(tmp_path / "empty_model")
    (tmp_path / "empty_model").mkdir()
    path = tmp_path / "c.json"
    path.write_text(json.dumps(config))
    output = tmp_path / "out"
    result = run(
        "separate", "-p", str(path), "--workers", "1", "-o", str(output), str(catalogue / "a.wav")
    )
    assert result.exit_code == 1
    errors = error_lines(result)
    assert len(errors) == 2, result.output
    assert (
        "cannot load the model: Model directory" in errors[0] and "has no checkpoint" in errors[0]
    )
    assert errors[1] == "ERROR:spleeter:no worker could load the model: nothing was separated"
    assert not output.exists() or list(output.rglob("*")) == []


def test_one_of_two_workers_cannot_load_the_model(
    tiny_4stems, catalogue, reference, tmp_path, monkeypatch
):
    """One line for the broken worker, the whole catalogue separated by the other, exit 1."""
    path = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
    monkeypatch.setenv("PYTHONPATH", path)
    monkeypatch.setenv(BROKEN_MARKER, str(tmp_path / "broken"))
    output = tmp_path / "out"
    result = run(
        "separate", "-p", tiny_4stems, "--workers", "2", "-o", str(output), str(catalogue),
        "--adapter", "cluster_adapters.BrokenOnOneWorkerAdapter",
    )  # fmt: skip
    errors = error_lines(result)
    assert len(errors) == 1, result.output
    assert errors[0].startswith("ERROR:spleeter:worker tcp://")
    assert "cannot load the model: ffmpeg is broken on this worker (test)" in errors[0]
    assert_equal_to(reference, output, ["a", "b", "victim"])
    rows = manifest_rows(output)
    assert {row["state"] for row in rows.values()} == {"done"}
    assert len({row["worker"] for row in rows.values()}) == 1
    summary = "Separated 3 file(s), skipped 0, failed 0, 1 worker(s) could not load the model"
    assert summary in result.stdout
    assert result.exit_code == 1  # something failed: a worker


def test_unknown_cluster_engine(tiny_4stems, catalogue, tmp_path):
    result = run(
        "separate", "-p", tiny_4stems, "--cluster", "slurm", "-o", str(tmp_path / "out"),
        str(catalogue / "a.wav"),
    )  # fmt: skip
    assert result.exit_code == 1
    assert error_lines(result) == [
        "ERROR:spleeter:unknown cluster engine 'slurm' (choose dask, ray)"
    ]


@pytest.mark.slow  # Ray is ~400 MB and 7 s to start: run with -m slow where it is installed
def test_ray_workers_equal_the_sequential_run(tiny_4stems, catalogue, reference, tmp_path):
    pytest.importorskip("ray")
    output = tmp_path / "out"
    args = ("separate", "-p", tiny_4stems, "--cluster", "ray", "--workers", "2")
    result = run(*args, "-o", str(output), str(catalogue))
    assert result.exit_code == 0, result.output
    assert_equal_to(reference, output, ["a", "b", "victim"])
    assert {row["state"] for row in manifest_rows(output).values()} == {"done"}
    result = run(*args, "-o", str(output), str(catalogue))
    assert "Separated 0 file(s), skipped 3, failed 0" in result.stdout


@pytest.mark.slow  # needs ray installed, as above
def test_an_unreachable_ray_cluster_is_one_line(tiny_4stems, catalogue, tmp_path):
    pytest.importorskip("ray")
    output = tmp_path / "out"
    result = run(
        "separate", "-p", tiny_4stems, "--cluster", "ray", "--scheduler", "127.0.0.1:9",
        "-o", str(output), str(catalogue / "a.wav"),
    )  # fmt: skip
    assert result.exit_code == 1
    errors = error_lines(result)
    assert len(errors) == 1 and "cannot reach the Ray cluster at 127.0.0.1:9" in errors[0]
    assert not output.exists() or list(output.rglob("*")) == []
