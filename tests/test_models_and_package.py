"""Models as a product: ``spleeter models`` lists the bundled ones; ``spleeter package`` makes
a release archive that the provider downloads, verifies and separates with (round trip
against a real HTTP server on 127.0.0.1)."""

import functools
import json
import shutil
import tarfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import soundfile
from modelkit import TINY_FILTERS
from typer.testing import CliRunner

from spleeter.__main__ import spleeter
from spleeter.listing import model_entry
from spleeter.utils.configuration import embedded_configuration_names

SAMPLE_RATE = 44100
FIXTURES = Path(__file__).parent / "fixtures" / "upstream"


def run(*args: str):
    return CliRunner().invoke(spleeter, list(args))


def test_models_lists_every_bundled_configuration(tmp_path, monkeypatch):
    models = tmp_path / "models"
    shutil.copytree(FIXTURES / "models" / "unet_2stems", models / "2stems")
    monkeypatch.setenv("MODEL_PATH", str(models))
    monkeypatch.setenv("GITHUB_HOST", "http://127.0.0.1:9")
    monkeypatch.setenv("GITHUB_REPOSITORY", "us/spleeter")
    monkeypatch.setenv("GITHUB_RELEASE", "v2.0")
    result = run("models", "--no-parameters")
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.output.splitlines()[1:]}
    assert set(rows) == {f"spleeter:{name}" for name in embedded_configuration_names()}
    two = rows["spleeter:2stems"].split()
    assert two[1:4] == ["unet.unet", "mask", "vocals,accompaniment"]
    assert two[-2:] == [
        "yes",
        "http://127.0.0.1:9/us/spleeter/releases/download/v2.0/2stems.tar.gz",
    ]
    assert "44.1 kHz / 16.5 kHz" in rows["spleeter:4stems-16kHz"]
    assert rows["spleeter:4stems"].split()[-2] == "no"
    assert "train: spleeter pretrain -p spleeter:4stems-ssl" in rows["spleeter:4stems-ssl"]
    assert "train: spleeter train -p spleeter:musdb -d DATA" in rows["spleeter:musdb"]
    # Parameter counts come from the built network (upstream's 2-stems U-Net: 2 x 9.8 M).
    assert model_entry("2stems").parameters == 19_645_450
    # Every family counts (the autoencoder's builder takes audio, not a spectrogram; `spleeter
    # models` with counts raised a TypeError on it until 2026-12-07).
    assert model_entry("3stems-cluster").parameters == 34_165_074
    dc = model_entry("4stems-dc")
    assert (dc.family, dc.stems) == ("embedding", ["source_1", "source_2", "source_3", "source_4"])
    assert 0.5 * 19_645_450 < dc.parameters < 19_645_450  # one U-Net body (a mask U-Net: 9.8 M)


@pytest.fixture
def release_server(tmp_path):
    """A static file server on 127.0.0.1 whose releases live in ``root/us/models/...``."""
    root = tmp_path / "host"
    release = root / "us" / "models" / "releases" / "download" / "v1"
    release.mkdir(parents=True)
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield release, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_package_serve_download_separate(tmp_path, monkeypatch, musdb_stems, release_server):
    monkeypatch.chdir(tmp_path)
    mixture, vocals = musdb_stems["mixture"], musdb_stems["vocals"]
    for name, waveform in (("mix", mixture), ("vocals", vocals), ("acc", mixture - vocals)):
        soundfile.write(tmp_path / f"{name}.wav", waveform, SAMPLE_RATE, subtype="FLOAT")
    duration = len(mixture) / SAMPLE_RATE
    (tmp_path / "train.csv").write_text(
        f"mix_path,vocals_path,accompaniment_path,duration\nmix.wav,vocals.wav,acc.wav,{duration}\n"
    )
    config = {
        "train_csv": "train.csv",
        "model_dir": "tiny",
        "mix_name": "mix",
        "instrument_list": ["vocals", "accompaniment"],
        "sample_rate": SAMPLE_RATE,
        "frame_length": 4096,
        "frame_step": 1024,
        "T": 64,
        "F": 64,
        "n_channels": 2,
        "chunk_duration": 4,
        "n_chunks_per_song": 1,
        "separation_exponent": 2,
        "mask_extension": "zeros",
        "learning_rate": 1e-3,
        "batch_size": 2,
        "train_max_steps": 2,
        "model": {"type": "unet.unet", "params": {"conv_n_filters": TINY_FILTERS}},
    }
    (tmp_path / "tiny.json").write_text(json.dumps(config))
    result = run("train", "-p", "tiny.json", "-d", str(tmp_path), "-q")
    assert result.exit_code == 0, result.output

    release, host = release_server
    result = run("package", "tiny", "-o", str(release))
    assert result.exit_code == 0, result.output
    archive = release / "tiny.tar.gz"
    with tarfile.open(archive) as tar:
        members = sorted(tar.getnames())
    assert members == [
        "checkpoint",
        "model.data-00000-of-00001",
        "model.index",
        "model.json",
        "model.meta",
    ]
    index = json.loads((release / "checksum.json").read_text())
    assert list(index) == ["tiny"] and len(index["tiny"]) == 64
    # Weights only: the training checkpoint also holds Adam's two slots per weight.
    training = sum(p.stat().st_size for p in Path("tiny").glob("model.ckpt-2.data-*"))
    assert archive.stat().st_size < 0.5 * training

    # A fresh machine: the model is not there, the provider downloads and verifies it.
    shutil.move("tiny", "trained")
    models = tmp_path / "models"
    monkeypatch.setenv("MODEL_PATH", str(models))
    monkeypatch.setenv("GITHUB_HOST", host)
    monkeypatch.setenv("GITHUB_REPOSITORY", "us/models")
    monkeypatch.setenv("GITHUB_RELEASE", "v1")
    result = run("separate", "-p", "tiny.json", "-o", "out", "mix.wav")
    assert result.exit_code == 0, result.output
    assert (models / "tiny" / ".probe").is_file() and (models / "tiny" / "model.json").is_file()
    downloaded = soundfile.read("out/mix/vocals.wav", dtype="float32")[0]

    from spleeter.separator import Separator

    reference = Separator("trained", multiprocess=False).separate(mixture)["vocals"]
    assert np.abs(reference).max() > 1e-3
    np.testing.assert_allclose(downloaded, reference, atol=2e-4)  # 16-bit file vs floats
    # The downloaded folder describes itself: no configuration needed.
    again = Separator(str(models / "tiny"), multiprocess=False).separate(mixture)["vocals"]
    np.testing.assert_array_equal(again, reference)


def test_package_refuses_a_folder_without_model_json(tmp_path):
    shutil.copytree(FIXTURES / "models" / "unet_2stems", tmp_path / "upstream")
    result = run("package", str(tmp_path / "upstream"), "-o", str(tmp_path / "release"))
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("ERROR:spleeter:")]
    assert len(errors) == 1 and "without model.json" in errors[0]
    assert not (tmp_path / "release").exists()
