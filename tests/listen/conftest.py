"""Fixtures of the listening-test tests: tiny systems made from the real MUSDB stems."""

from pathlib import Path

import numpy as np
import pytest
from listenkit import RATE, STEMS, TRACK, write


@pytest.fixture(scope="session")
def listen_sources(tmp_path_factory: pytest.TempPathFactory, musdb_stems) -> dict:
    """A reference folder and two "systems" in MUSDB layout: the true stem plus noise
    (``noisy``) and the true stem low-passed at 2 kHz (``dull``)."""
    pytest.importorskip("pyloudnorm", reason="the 'listen' extra is not installed")
    from scipy.signal import butter, sosfilt

    root = tmp_path_factory.mktemp("listen_sources")
    rng = np.random.default_rng(15)
    sos = butter(4, 2000, fs=RATE, output="sos")
    for stem in STEMS:
        true = musdb_stems[stem]
        write(root / "refs" / TRACK / f"{stem}.wav", true)
        noise = rng.standard_normal(true.shape).astype(np.float32) * 0.02
        write(root / "noisy" / TRACK / f"{stem}.wav", true + noise)
        write(root / "dull" / TRACK / f"{stem}.wav", sosfilt(sos, true, axis=0).astype("f4"))
    return {
        "reference_dir": root / "refs",
        "systems": {"noisy": root / "noisy", "dull": root / "dull"},
        "root": root,
    }


@pytest.fixture(scope="session")
def prepared(tmp_path_factory: pytest.TempPathFactory, listen_sources) -> Path:
    """A prepared test folder (3 s excerpts, vocals and drums); tests copy it before writing."""
    from spleeter.listen.prepare import prepare_test

    folder = tmp_path_factory.mktemp("prepared") / "test"
    prepare_test(
        folder,
        listen_sources["reference_dir"],
        listen_sources["systems"],
        list(STEMS),
        duration=3.0,
        seed=15,
    )
    return folder


@pytest.fixture
def test_folder(tmp_path: Path, prepared: Path) -> Path:
    """A fresh copy of the prepared test, with no database."""
    import shutil

    target = tmp_path / "test"
    shutil.copytree(prepared, target)
    return target
