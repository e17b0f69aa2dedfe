"""The rendered multitrack dataset generator (``spleeter.rendering``).

Renders a few 6-second songs with FluidSynth; skipped when ``music21``, the ``fluidsynth``
binary or the FluidR3 GM soundfont (Debian ``fluidsynth``, ``fluid-soundfont-gm``) is missing.
Seeds 3 and 8 draw Bach chorales only, which music21 parses fastest.
"""

import csv
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

pytest.importorskip("music21")

from spleeter import SpleeterError  # noqa: E402
from spleeter.rendering import render_dataset  # noqa: E402
from spleeter.rendering.__main__ import main  # noqa: E402
from spleeter.rendering.arrange import arrange  # noqa: E402
from spleeter.rendering.dataset import prepare_output  # noqa: E402
from spleeter.rendering.scores import load_piece  # noqa: E402
from spleeter.rendering.synth import SOUNDFONT_LOCATIONS  # noqa: E402

needs_fluidsynth = pytest.mark.skipif(
    shutil.which("fluidsynth") is None or not any(p.is_file() for p in SOUNDFONT_LOCATIONS),
    reason="needs the Debian packages fluidsynth and fluid-soundfont-gm",
)

SEED, OTHER_SEED, DURATION = 3, 8, 6.0
STEMS4 = ("vocals", "drums", "bass", "other")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """Three 6-s songs (one per split), 4 stems."""
    root = tmp_path_factory.mktemp("rendered") / "data"
    render_dataset(root, n_songs=3, seed=SEED, duration=DURATION, stems=4)
    return root


@needs_fluidsynth
def test_layout_and_csvs(dataset: Path):
    manifest = json.loads((dataset / "dataset.json").read_text())
    assert manifest["seed"] == SEED and len(manifest["songs"]) == 3
    splits = {}
    for split in ("train", "validation", "test"):
        rows = read_csv(dataset / f"{split}.csv")
        assert list(rows[0]) == ["mix_path", *(f"{s}_path" for s in STEMS4), "duration"]
        splits[split] = rows
        for row in rows:
            folder = "test" if split == "test" else "train"
            for column, value in row.items():
                if column == "duration":
                    continue
                assert value.startswith(f"{folder}/") and not Path(value).is_absolute()
                info = soundfile.info(dataset / value)
                assert (info.samplerate, info.channels, info.subtype) == (44100, 2, "FLOAT")
                assert info.frames / 44100 == pytest.approx(float(row["duration"]), abs=1e-6)
                assert float(row["duration"]) == pytest.approx(DURATION)
    assert [len(rows) for rows in splits.values()] == [1, 1, 1]
    songs = sorted(p.name for p in (dataset / "train").iterdir())
    songs += sorted(p.name for p in (dataset / "test").iterdir())
    assert sorted(songs) == sorted(song["name"] for song in manifest["songs"])
    for song in manifest["songs"]:
        names = {p.name for p in (dataset / song["folder"]).iterdir()}
        assert names == {f"{s}.wav" for s in ("mixture", *STEMS4)}
        assert song["piece"].startswith("bach/") and song["roles"]["vocals"]["programs"]


@needs_fluidsynth
def test_stems_sum_to_mixture_and_differ(dataset: Path):
    for row in read_csv(dataset / "train.csv") + read_csv(dataset / "test.csv"):
        mixture, rate = soundfile.read(dataset / row["mix_path"], dtype="float32")
        stems = {s: soundfile.read(dataset / row[f"{s}_path"], dtype="float32")[0] for s in STEMS4}
        total = sum(stem.astype(np.float64) for stem in stems.values())
        assert rate == 44100 and mixture.shape == (round(DURATION * 44100), 2)
        assert np.abs(total - mixture).max() < 1e-5
        assert -1.5 < 20 * np.log10(np.abs(mixture).max()) < -0.5
        for name, stem in stems.items():
            rms_db = 10 * np.log10(np.mean(stem.astype(np.float64) ** 2))
            assert rms_db > -45, f"{name} is (nearly) silent: {rms_db:.1f} dB"
        mono = np.array([stems[s].mean(axis=1) for s in STEMS4])
        correlation = np.abs(np.corrcoef(mono) - np.eye(len(STEMS4)))
        assert correlation.max() < 0.9


@needs_fluidsynth
def test_same_seed_same_bytes_other_seed_other_songs(dataset: Path, tmp_path: Path):
    # The command line, piped: quiet. Song 0 of a 1-song render is song 0 of the 3-song render.
    again = tmp_path / "again"
    command = [sys.executable, "-m", "spleeter.rendering", "-o", str(again), "--songs", "1"]
    command += ["--seed", str(SEED), "--duration", str(DURATION)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    first = json.loads((dataset / "dataset.json").read_text())["songs"][0]
    [copy] = json.loads((again / "dataset.json").read_text())["songs"]
    assert copy["name"] == first["name"]
    for name in ("mixture", *STEMS4):
        assert digest(again / copy["folder"] / f"{name}.wav") == digest(
            dataset / first["folder"] / f"{name}.wav"
        )

    other = tmp_path / "other"
    render_dataset(other, n_songs=1, seed=OTHER_SEED, duration=DURATION, stems=5)
    [song] = json.loads((other / "dataset.json").read_text())["songs"]
    assert song["name"] != first["name"]
    names = {p.name for p in (other / song["folder"]).iterdir()}
    assert names == {f"{s}.wav" for s in ("mixture", *STEMS4, "piano")}
    assert list(read_csv(other / "train.csv")[0])[-2:] == ["piano_path", "duration"]
    assert digest(other / song["folder"] / "mixture.wav") != digest(
        dataset / first["folder"] / "mixture.wav"
    )


def test_vocals_are_monophonic_and_roles_filled():
    piece = load_piece("bach/bwv66.6.mxl")
    for seed in range(3):
        song = arrange(piece, 20.0, np.random.default_rng(seed))
        assert set(song.tracks) == {"vocals", "drums", "bass", "other", "piano"}
        [vocals] = song.tracks["vocals"]
        assert len(vocals.notes) > 10
        for a, b in zip(vocals.notes, vocals.notes[1:], strict=False):
            assert a.start + a.duration <= b.start
        for tracks in song.tracks.values():
            assert all(0 <= n.start < 20.0 for t in tracks for n in t.notes)
            assert sum(len(t.notes) for t in tracks) > 0


def test_cli_refuses_non_empty_directory(tmp_path: Path, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    code = main(["-o", str(tmp_path), "--songs", "1", "--duration", "6"])
    assert code == 1
    error = capsys.readouterr().err
    assert error.startswith("ERROR:spleeter:") and "--force" in error
    assert error.count("\n") == 1
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_force_clears_a_previous_render_only(tmp_path: Path):
    (tmp_path / "dataset.json").write_text("{}")
    (tmp_path / "train" / "old song").mkdir(parents=True)
    (tmp_path / "notes.txt").write_text("mine")
    prepare_output(tmp_path, force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    with pytest.raises(SpleeterError, match="not empty"):
        prepare_output(tmp_path, force=False)


def test_cli_reports_missing_fluidsynth(tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert main(["-o", str(tmp_path / "out"), "--songs", "1"]) == 1
    error = capsys.readouterr().err
    assert "fluidsynth" in error and "apt-get install fluidsynth" in error
    assert not (tmp_path / "out").exists()
