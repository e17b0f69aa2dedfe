"""The training configurations in ``configs/`` (documented in docs/training.md) are accepted by
``spleeter train``: their settings, their network's declared needs and every row of a dataset
in the layout they expect pass the checks ``train`` runs before any work; the small one
trains through the command line; all of them train one step in the slow run."""

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile
from typer.testing import CliRunner

from spleeter.__main__ import spleeter
from spleeter.dataset import read_dataset_rows, resolve_csv_paths
from spleeter.model.registry import architecture_problems
from spleeter.training.checks import check_dataset
from spleeter.training.settings import training_settings
from spleeter.utils.configuration import load_configuration

CONFIGS = Path(__file__).parents[2] / "configs"
CONFIG_FILES = sorted(CONFIGS.rglob("*.json"))
SAMPLE_RATE = 44100
SONG_SECONDS = 13.0
"""Longer than one full-size training example (T = 512 frames: 11.96 s) and the 12-s
validation chunk."""


def run(*args: str):
    return CliRunner().invoke(spleeter, list(args))


def config_id(path: Path) -> str:
    return str(path.relative_to(CONFIGS))


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    """Three rendered 13-s songs with 5 stems (two for training, one for validation)."""
    from spleeter.rendering import render_dataset

    root = tmp_path_factory.mktemp("rendered") / "data"
    splits = {"train": 0.67, "validation": 0.33}
    render_dataset(root, n_songs=3, seed=0, duration=SONG_SECONDS, stems=5, splits=splits)
    return root


@pytest.fixture(scope="module")
def musdb_layout(tmp_path_factory, musdb_stems) -> Path:
    """The first training and validation tracks of the bundled MUSDB18 lists in MUSDB layout
    (``train/<track>/<stem>.wav``, accompaniment included), from the real excerpt repeated to
    13 s, with CSVs of those rows (the full lists name 100 tracks)."""
    root = tmp_path_factory.mktemp("musdb")
    samples = int(SONG_SECONDS * SAMPLE_RATE)

    def repeated(signal: np.ndarray) -> np.ndarray:
        return np.tile(signal, (samples // len(signal) + 1, 1))[:samples]

    stems = {name: repeated(musdb_stems[name]) for name in ("vocals", "drums", "bass", "other")}
    stems["mixture"] = repeated(musdb_stems["mixture"])
    stems["accompaniment"] = stems["drums"] + stems["bass"] + stems["other"]
    for prefix in ("musdb", "musdb_2stems"):
        for split in ("train", "validation"):
            bundled = resolve_csv_paths({"train_csv": f"{prefix}_{split}.csv"}, str(root))
            with open(bundled["train_csv"], newline="") as handle:
                reader = csv.DictReader(handle)
                header, first = list(reader.fieldnames or []), next(reader)
            for column, path in first.items():
                if column.endswith("_path"):
                    target = root / path
                    target.parent.mkdir(parents=True, exist_ok=True)
                    name = target.stem
                    soundfile.write(target, stems[name], SAMPLE_RATE, subtype="PCM_16")
            first["duration"] = str(SONG_SECONDS)
            with open(root / f"{prefix}_{split}.csv", "w", newline="") as handle:
                writer = csv.DictWriter(handle, header, lineterminator="\n")
                writer.writeheader()
                writer.writerow(first)
    return root


def dataset_for(config: Path, rendered: Path, musdb_layout: Path) -> Path:
    return musdb_layout if config.parent.name == "musdb" else rendered


@pytest.mark.parametrize("config", CONFIG_FILES, ids=config_id)
def test_train_accepts_every_config(config, rendered, musdb_layout, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = load_configuration(str(config))
    settings, checked = training_settings(params)
    assert settings.max_steps == params["train_max_steps"] and settings.batch_size > 0
    assert architecture_problems(params) == []
    data = dataset_for(config, rendered, musdb_layout)
    found = resolve_csv_paths(checked, str(data))
    for key in ("train_csv", "validation_csv"):
        assert Path(found[key]).is_file(), key
        assert read_dataset_rows(found[key], checked), key
    check_dataset(found, str(data))  # every row usable: raises otherwise


def test_the_musdb_configs_name_the_bundled_track_lists(tmp_path):
    """Without a CSV beside the data, the configs take MUSDB18's lists shipped with spleeter:
    86 training and 14 validation tracks, in MUSDB layout, with the config's columns."""
    recipes = (("4stems", 4), ("2stems", 2), ("4stems-transformer", 4), ("4stems-ssl", 4))
    for name, stems in recipes:
        params = load_configuration(str(CONFIGS / "musdb" / f"{name}.json"))
        found = resolve_csv_paths(params, str(tmp_path))
        counts = {}
        for key in ("train_csv", "validation_csv"):
            rows = read_dataset_rows(found[key], params)
            counts[key] = len(rows)
            for _, row in rows:
                folders = {row[f"{s}_path"].rsplit("/", 1)[0] for s in params["instrument_list"]}
                assert len(folders) == 1 and folders.pop().startswith("train/")
        assert counts == {"train_csv": 86, "validation_csv": 14}, name
        assert len(params["instrument_list"]) == stems


def test_the_small_config_trains_through_the_cli(rendered, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run(
        "train",
        "-p",
        str(CONFIGS / "rendered" / "4stems-small.json"),
        "-d",
        str(rendered),
        "--max-steps",
        "2",
        "-q",
    )
    assert result.exit_code == 0, result.output
    model_dir = tmp_path / "rendered_4stems_small"
    described = json.loads((model_dir / "model.json").read_text())
    assert described["checkpoint"]["step"] == 2
    assert described["sources"] == ["vocals", "drums", "bass", "other"]
    index = (model_dir / "model.ckpt-2.index").stat().st_size
    data = sum(p.stat().st_size for p in model_dir.glob("model.ckpt-2.data-*"))
    # Few filters: a checkpoint (weights and Adam's two slots) of a few MB, not 471 MB.
    assert index > 0 and data < 40e6, data


@pytest.mark.slow
@pytest.mark.parametrize("config", CONFIG_FILES, ids=config_id)
def test_every_config_trains_one_step(config, rendered, musdb_layout, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = dataset_for(config, rendered, musdb_layout)
    params = load_configuration(str(config))
    if params["model"]["type"] == "unet.ssl_unet":
        result = run("pretrain", "-p", str(config), "-d", str(data / "train"), "--max-steps", "1")
        assert result.exit_code == 0, result.output
    result = run("train", "-p", str(config), "-d", str(data), "--max-steps", "1", "-q")
    assert result.exit_code == 0, result.output
    assert (tmp_path / params["model_dir"] / "model.ckpt-1.index").is_file()
    shutil.rmtree(tmp_path / params["model_dir"])
