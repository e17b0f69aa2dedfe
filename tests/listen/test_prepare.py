"""``spleeter listen prepare``: excerpts, loudness, anchors, manifest and bad input."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile
from listenkit import RATE, STEMS, TRACK, write
from typer.testing import CliRunner

from spleeter import SpleeterError
from spleeter.__main__ import spleeter
from spleeter.listen.anchors import (
    ANCHORS,
    LOWER_ANCHOR,
    MID_ANCHOR,
    design_lowpass,
    response_db,
    spec_violations,
)
from spleeter.listen.loudness import integrated_loudness
from spleeter.listen.manifest import load_manifest
from spleeter.listen.prepare import parse_systems, prepare_test


@pytest.mark.parametrize("rate", [44100, 48000])
@pytest.mark.parametrize("spec", ANCHORS, ids=lambda s: s.name)
def test_anchor_filters_meet_the_standard(spec, rate):
    taps = design_lowpass(spec, rate)
    assert spec_violations(taps, rate, spec) == []
    db = response_db(taps, rate, np.array([0.0, spec.passband_hz, spec.stop25_hz, spec.stop50_hz]))
    assert abs(db[0]) < 0.01 and abs(db[1]) <= 0.1
    assert db[2] <= -25.0 and db[3] <= -50.0


def band_db(signal: np.ndarray, low: float, high: float) -> float:
    window = np.hanning(len(signal))  # no leakage of the strong lows from the cut edges
    spectrum = np.abs(np.fft.rfft(signal.mean(axis=1) * window)) ** 2
    f = np.fft.rfftfreq(len(signal), 1 / RATE)
    return 10 * np.log10(spectrum[(f >= low) & (f < high)].sum() + 1e-30)


def test_prepare_writes_a_matched_test(prepared: Path, musdb_stems):
    manifest = load_manifest(prepared)
    assert manifest.systems == ("noisy", "dull") and manifest.stems == STEMS
    assert [t.id for t in manifest.trials] == ["training", "t01", "t02"]
    assert manifest.trials[0].training and manifest.trials[0].stem == "vocals"
    assert len(manifest.rated_trials) == 2
    served = json.loads((prepared / "manifest.json").read_text())
    assert served["format"] == "spleeter-mushra"
    for trial in manifest.trials:
        names = sorted(c.name for c in trial.conditions)
        assert names == ["anchor35", "anchor70", "dull", "noisy", "reference"]
        assert trial.duration == 3.0 and len(trial.conditions) <= 12
        signals = {}
        for condition in trial.conditions:
            data, rate = soundfile.read(prepared / condition.file, always_2d=True)
            assert rate == RATE and data.shape == (3 * RATE, 2)
            assert condition.id in condition.file  # opaque names: the file says nothing more
            assert condition.name not in Path(condition.file).name
            # every signal at the trial's BS.1770 loudness (16-bit rounding aside)
            assert integrated_loudness(data, rate) == pytest.approx(trial.loudness, abs=0.05)
            assert np.max(np.abs(data)) <= 0.981
            signals[condition.name] = data
        # the excerpt is the reference's samples from trial.start on, gain aside
        start = round(trial.start * RATE)
        true = musdb_stems[trial.stem][start : start + 3 * RATE].astype(float)
        hidden = signals["reference"]
        gain = np.dot(hidden.ravel(), true.ravel()) / np.dot(true.ravel(), true.ravel())
        assert np.max(np.abs(hidden - gain * true)) < 1e-4
        # anchors: unchanged (bar loudness) below the pass band, gone above the stop band
        ref = signals["reference"]
        for spec in ANCHORS:
            anchor = signals[spec.name]
            passband = band_db(anchor, 100, spec.passband_hz * 0.8)
            offset = passband - band_db(ref, 100, spec.passband_hz * 0.8)
            stop = band_db(anchor, spec.stop50_hz, RATE / 2) - offset
            assert stop - band_db(ref, spec.stop50_hz, RATE / 2) < -45
    # the excerpt lies within the 6.08 s track, on the 0.5 s grid
    assert all(t.start in np.arange(0, 3.5, 0.5) for t in manifest.trials)


def test_lower_anchor_spec_is_the_mid_one_halved():
    assert (MID_ANCHOR.passband_hz, MID_ANCHOR.stop25_hz, MID_ANCHOR.stop50_hz) == tuple(
        2 * v for v in (LOWER_ANCHOR.passband_hz, LOWER_ANCHOR.stop25_hz, LOWER_ANCHOR.stop50_hz)
    )


def make_sources(tmp_path: Path, listen_sources) -> tuple[Path, dict]:
    root = tmp_path / "src"
    shutil.copytree(listen_sources["root"], root)
    return root / "refs", {"noisy": root / "noisy", "dull": root / "dull"}


def test_prepare_names_a_missing_file(tmp_path, listen_sources):
    refs, systems = make_sources(tmp_path, listen_sources)
    missing = systems["dull"] / TRACK / "drums.wav"
    missing.unlink()
    with pytest.raises(SpleeterError, match=f"Missing file.*{missing}"):
        prepare_test(tmp_path / "out", refs, systems, list(STEMS), duration=3.0)
    assert not (tmp_path / "out").exists()


def test_prepare_names_a_length_mismatch(tmp_path, listen_sources, musdb_stems):
    refs, systems = make_sources(tmp_path, listen_sources)
    short = systems["noisy"] / TRACK / "vocals.wav"
    write(short, musdb_stems["vocals"][:-100])
    n = len(musdb_stems["vocals"])
    with pytest.raises(SpleeterError, match=f"Length mismatch: {short} .noisy. has {n - 100} "):
        prepare_test(tmp_path / "out", refs, systems, list(STEMS), duration=3.0)


def test_prepare_names_a_rate_mismatch(tmp_path, listen_sources, musdb_stems):
    refs, systems = make_sources(tmp_path, listen_sources)
    other = systems["dull"] / TRACK / "drums.wav"
    write(other, musdb_stems["drums"], rate=48000)
    with pytest.raises(SpleeterError, match=f"Sample rate mismatch: {other} .dull. is at 48000"):
        prepare_test(tmp_path / "out", refs, systems, list(STEMS), duration=3.0)


def test_prepare_refuses_more_than_twelve_signals_and_long_excerpts(tmp_path, listen_sources):
    refs, systems = make_sources(tmp_path, listen_sources)
    many = {f"s{k}": systems["noisy"] for k in range(10)}
    with pytest.raises(SpleeterError, match="13 signals per trial.*at most 12"):
        prepare_test(tmp_path / "out", refs, many, ["vocals"], duration=3.0)
    with pytest.raises(SpleeterError, match="at most 12 s"):
        prepare_test(tmp_path / "out", refs, systems, ["vocals"], duration=12.5)
    with pytest.raises(SpleeterError, match="NAME=DIR"):
        parse_systems(["noisy"])
    with pytest.raises(SpleeterError, match="not one of"):
        parse_systems(["reference=x"])


def test_cli_prepare_and_its_error_line(tmp_path, listen_sources):
    refs, systems = make_sources(tmp_path, listen_sources)
    (systems["noisy"] / TRACK / "vocals.wav").unlink()
    args = ["listen", "prepare", "-o", str(tmp_path / "out"), "--reference-dir", str(refs)]
    args += ["--system", f"noisy={systems['noisy']}", "--stems", "vocals", "--duration", "3"]
    result = CliRunner().invoke(spleeter, args)
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR:spleeter:")]
    assert errors == [f"ERROR:spleeter:Missing file(s): {systems['noisy'] / TRACK / 'vocals.wav'}"]
