"""Same numbers as upstream Spleeter 2.4.2 for the same checkpoint and input.

``tests/fixtures/upstream`` holds tiny models trained by upstream's own ``spleeter train`` (with
real batch-norm statistics written in afterwards, since upstream's training never updates
them), a real 3-second input, and upstream's outputs for it (see
``tools/upstream_fixtures/README.md``). Each case separates that input here and compares:
float outputs within 1e-4 of upstream's, and the 16-bit files written by both command lines
within 2 LSB.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
from typer.testing import CliRunner

from spleeter.__main__ import spleeter
from spleeter.separator import Separator

FIXTURES = Path(__file__).parent / "fixtures" / "upstream"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
TOLERANCE = 1e-4


@pytest.fixture(autouse=True)
def upstream_models(monkeypatch: pytest.MonkeyPatch, upstream_model_copies: Path) -> None:
    """Resolve the fixtures' relative ``model_dir`` under (a copy of) their ``models`` folder."""
    assert MANIFEST["model_path"] == "models"
    monkeypatch.setenv("MODEL_PATH", str(upstream_model_copies))


@pytest.fixture(scope="module")
def upstream_input() -> np.ndarray:
    waveform, rate = soundfile.read(FIXTURES / MANIFEST["input"]["file"], dtype="float32")
    assert rate == MANIFEST["input"]["sample_rate"] and waveform.shape == (
        MANIFEST["input"]["samples"],
        2,
    )
    return waveform


def transformed(waveform: np.ndarray, transform: str) -> np.ndarray:
    if transform == "mono":
        return waveform[:, :1]
    if transform == "3ch":
        return np.concatenate([waveform, waveform[:, :1] - waveform[:, 1:2]], axis=1)
    assert transform == "none"
    return waveform


@pytest.mark.parametrize("engine", ["tensorflow", "auto"])
@pytest.mark.parametrize("case", MANIFEST["cases"], ids=lambda case: case["name"])
def test_separate_matches_upstream(case, engine, upstream_input):
    """With TensorFlow, and with the default engine (ONNX Runtime for the U-Nets, converted
    from the checkpoint on first use)."""
    golden = np.load(FIXTURES / case["npz"])
    separator = Separator(
        str(FIXTURES / case["config"]), MWF=case["mwf"], multiprocess=False, engine=engine
    )
    sources = separator.separate(transformed(upstream_input, case["input_transform"]))
    assert list(sources) == case["instruments"]
    start, stop = case["window_start"], case["window_start"] + case["window_length"]
    for instrument, ours in sources.items():
        assert ours.shape == (case["length"], 2) and ours.dtype == np.float32
        theirs = golden[f"{instrument}__strided"]
        np.testing.assert_allclose(ours[:: case["stride"]], theirs, rtol=0, atol=TOLERANCE)
        np.testing.assert_allclose(
            ours[start:stop], golden[f"{instrument}__window"], rtol=0, atol=TOLERANCE
        )
        np.testing.assert_allclose(
            ours.sum(axis=0, dtype=np.float64),
            golden[f"{instrument}__sum"],
            atol=TOLERANCE * case["length"] ** 0.5,
        )
        np.testing.assert_allclose(
            (ours.astype(np.float64) ** 2).sum(axis=0), golden[f"{instrument}__sumsq"], rtol=1e-4
        )
        # The comparison is not vacuous: each stem differs clearly from the input and the others.
        assert np.abs(theirs).max() > 1e-2


def test_cli_16bit_files_match_upstream_cli(tmp_path):
    """``spleeter separate -p configs/unet_2stems.json -o OUT input.flac``, as upstream ran it."""
    config = FIXTURES / "configs" / "unet_2stems.json"
    source = FIXTURES / MANIFEST["input"]["file"]
    result = CliRunner().invoke(
        spleeter, ["separate", "-p", str(config), "-o", str(tmp_path), str(source)]
    )
    assert result.exit_code == 0, result.output
    for instrument, reference in MANIFEST["cli"]["stems"].items():
        theirs, rate = soundfile.read(FIXTURES / reference["file"], dtype="int16")
        path = tmp_path / source.stem / f"{instrument}.wav"
        assert soundfile.info(path).subtype == "PCM_16"
        ours, our_rate = soundfile.read(path, dtype="int16")
        assert our_rate == rate and ours.shape == theirs.shape
        assert np.abs(ours.astype(np.int32) - theirs.astype(np.int32)).max() <= 2
        assert np.abs(theirs).max() > 100  # real signal, not silence
