"""Shared test fixtures: real audio from the MUSDB18 excerpt shipped in the stempeg wheel."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from audiokit import STEM_NAMES, decode_stream

FIXTURES = Path(__file__).parent / "fixtures"


def _files(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(path.relative_to(root)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in root.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


@pytest.fixture(scope="session", autouse=True)
def _fixtures_stay_untouched():
    """The committed fixtures are never written: separating with ``-e auto`` caches an ONNX
    conversion next to a checkpoint, so tests must use :func:`upstream_model_copies`."""
    before = _files(FIXTURES)
    yield
    after = _files(FIXTURES)
    changed = sorted(
        name for name in after.keys() | before.keys() if after.get(name) != before.get(name)
    )
    assert not changed, f"tests changed files under {FIXTURES}: {', '.join(changed)}"


@pytest.fixture(scope="session")
def upstream_model_copies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A writable copy of the upstream fixture models (``MODEL_PATH`` for their configs)."""
    target = tmp_path_factory.mktemp("upstream") / "models"
    shutil.copytree(FIXTURES / "upstream" / "models", target)
    return target


@pytest.fixture(scope="session")
def musdb_excerpt() -> Path:
    """The real MUSDB18 excerpt ``The Easton Ellises - Falcon 69.stem.mp4`` (6.08 s, 5 streams)."""
    import stempeg

    path = Path(stempeg.__file__).parent / "data" / "The Easton Ellises - Falcon 69.stem.mp4"
    assert path.is_file(), f"stempeg's MUSDB excerpt is missing: {path}"
    return path


@pytest.fixture(scope="session")
def musdb_stems(musdb_excerpt: Path) -> dict[str, np.ndarray]:
    """The excerpt's mixture and four stems as float32 ``(n, 2)`` arrays at 44.1 kHz."""
    return {name: decode_stream(musdb_excerpt, k) for k, name in enumerate(STEM_NAMES)}


@pytest.fixture(scope="session")
def mixture_wav(tmp_path_factory: pytest.TempPathFactory, musdb_stems) -> Path:
    """The excerpt's mixture written as a 16-bit stereo WAV file (``falcon.wav``)."""
    import soundfile

    path = tmp_path_factory.mktemp("audio") / "falcon.wav"
    soundfile.write(path, musdb_stems["mixture"], 44100, subtype="PCM_16")
    return path


@pytest.fixture(autouse=True)
def _isolated_model_path(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Never touch the user's ``pretrained_models`` or cache: each test gets an empty
    MODEL_PATH and cache directory (ONNX exports, OpenVINO networks; outside ``tmp_path``,
    which tests compare before and after a refused run)."""
    model_path = tmp_path / "pretrained_models"
    monkeypatch.setenv("MODEL_PATH", str(model_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("GITHUB_HOST", "http://127.0.0.1:9")  # unroutable: no accidental download
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(scope="session")
def tiny_4stems(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Path of a JSON config for a small random 4-stem U-Net saved in upstream's format."""
    from modelkit import tiny_config, write_config, write_model

    from spleeter.utils.configuration import load_configuration

    directory = tmp_path_factory.mktemp("tiny4")
    config = tiny_config(load_configuration("spleeter:4stems"), directory / "model")
    write_model(config, seed=4)
    return write_config(config, directory / "tiny4.json")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """With SPLEETER_TESTS_NO_SKIP=1 (CI), a skipped test is a failure: CI has every tool."""
    outcome = yield
    report = outcome.get_result()
    if (
        report.skipped
        and os.environ.get("SPLEETER_TESTS_NO_SKIP") == "1"
        and not hasattr(report, "wasxfail")
    ):
        report.outcome = "failed"
        report.longrepr = f"skipped where every test must run: {report.longrepr}"
