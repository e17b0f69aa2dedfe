"""The Python API (``spleeter.separator.Separator``) on real audio, with a small model."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile

from spleeter import SpleeterError
from spleeter.audio.spectrogram import stft
from spleeter.separator import Separator

INSTRUMENTS = ["vocals", "drums", "bass", "other"]


@pytest.fixture(scope="module")
def separator(tiny_4stems):
    return Separator(tiny_4stems, multiprocess=False)


@pytest.fixture(scope="module")
def mixture(musdb_stems):
    return musdb_stems["mixture"]


@pytest.fixture(scope="module")
def sources(separator, mixture):
    return separator.separate(mixture)


def variant(config_path: str, tmp_path: Path, **changes) -> str:
    config = json.loads(Path(config_path).read_text())
    config.update(changes)
    path = tmp_path / "variant.json"
    path.write_text(json.dumps(config))
    return str(path)


def test_one_output_per_instrument_with_input_length(sources, mixture):
    assert list(sources) == INSTRUMENTS
    for name, source in sources.items():
        assert source.shape == mixture.shape and source.dtype == np.float32, name
        assert np.abs(source - mixture).max() > 1e-3
    assert np.abs(sources["vocals"] - sources["drums"]).max() > 1e-3


def test_masks_partition_the_band_below_F(sources, mixture):
    """Ratio masks sum to one on the first F bins and are zero above: the stems add up to the
    mixture below 11 kHz and are silent above (bins near the cut leak once resynthesised)."""
    total = stft(sum(sources.values()), 4096, 1024)
    reference = stft(mixture, 4096, 1024)
    scale = np.abs(reference).max()
    assert np.abs(total[:, :900] - reference[:, :900]).max() < 1e-5 * scale
    for name, source in sources.items():
        high = np.abs(stft(source, 4096, 1024)[:, 1100:]).max()
        assert high < 1e-3 * scale, name


def test_average_extension_keeps_the_whole_band(tiny_4stems, tmp_path, mixture):
    sources = Separator(
        variant(tiny_4stems, tmp_path, mask_extension="average"), multiprocess=False
    ).separate(mixture)
    np.testing.assert_allclose(sum(sources.values()), mixture, atol=1e-4)


def test_mono_is_duplicated_and_extra_channels_dropped(separator, mixture, sources):
    mono = separator.separate(mixture[:, :1])
    duplicated = separator.separate(np.repeat(mixture[:, :1], 2, axis=1))
    for name in INSTRUMENTS:
        assert mono[name].shape == mixture.shape
        np.testing.assert_array_equal(mono[name], duplicated[name])
    three = separator.separate(np.concatenate([mixture, mixture[:, :1] * 0.3], axis=1))
    for name in INSTRUMENTS:
        np.testing.assert_array_equal(three[name], sources[name])


def test_float64_and_1d_input(separator, mixture):
    as64 = separator.separate(mixture.astype(np.float64)[:50_000])
    flat = separator.separate(mixture[:50_000, 0])
    assert as64["vocals"].dtype == np.float32 and as64["vocals"].shape == (50_000, 2)
    assert flat["bass"].shape == (50_000, 2)


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((0, 2), np.float32), "empty"),
        (np.zeros((10, 2, 2), np.float32), "must be an array"),
        (np.zeros((100, 2), np.int16), "floating point"),
    ],
)
def test_bad_waveforms(separator, bad, message):
    with pytest.raises(SpleeterError, match=message):
        separator.separate(bad)


def test_model_is_loaded_once(tiny_4stems, mixture, monkeypatch):
    import spleeter.separator as module

    calls = []
    original = module.create_engine
    monkeypatch.setattr(module, "create_engine", lambda *a: calls.append(a) or original(*a))
    separator = Separator(tiny_4stems, multiprocess=False)
    first = separator.separate(mixture[:30_000])
    second = separator.separate(mixture[:30_000])
    assert len(calls) == 1
    np.testing.assert_array_equal(first["vocals"], second["vocals"])


def test_separate_to_file_default_layout(tiny_4stems, mixture_wav, tmp_path):
    separator = Separator(tiny_4stems)
    separator.separate_to_file(str(mixture_wav), str(tmp_path))
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert written == [f"falcon/{name}.wav" for name in sorted(INSTRUMENTS)]
    # The same separation in memory, from the same 16-bit samples, within one LSB of the file.
    expected = separator.separate(soundfile.read(mixture_wav, dtype="float32")[0])
    for name in INSTRUMENTS:
        path = tmp_path / "falcon" / f"{name}.wav"
        assert soundfile.info(path).subtype == "PCM_16" and soundfile.info(path).samplerate == 44100
        data, _ = soundfile.read(path, dtype="float32")
        assert data.shape == expected[name].shape
        assert np.abs(data - np.clip(expected[name], -1, 1)).max() <= 1.01 / 32768


def test_filename_format_with_foldername(tiny_4stems, mixture_wav, tmp_path):
    separator = Separator(tiny_4stems, multiprocess=False)
    separator.separate_to_file(
        str(mixture_wav),
        str(tmp_path),
        filename_format="{foldername}/{filename}-{instrument}.{codec}",
        codec="flac",
    )
    folder = mixture_wav.parent.name
    assert sorted(p.name for p in (tmp_path / folder).iterdir()) == sorted(
        f"falcon-{i}.flac" for i in INSTRUMENTS
    )


def test_filename_conflict_writes_nothing(tiny_4stems, mixture_wav, tmp_path):
    separator = Separator(tiny_4stems, multiprocess=False)
    with pytest.raises(SpleeterError, match="Separated source path conflict"):
        separator.separate_to_file(
            str(mixture_wav), str(tmp_path), filename_format="I wanna be your lover"
        )
    assert list(tmp_path.iterdir()) == []


def test_unknown_placeholder(tiny_4stems, mixture_wav, tmp_path):
    separator = Separator(tiny_4stems, multiprocess=False)
    with pytest.raises(
        SpleeterError, match=r"Invalid filename format '\{track\}/\{instrument\}\.\{codec\}'"
    ):
        separator.separate_to_file(
            str(mixture_wav), str(tmp_path), filename_format="{track}/{instrument}.{codec}"
        )


def test_failed_encoding_leaves_no_partial_output(tiny_4stems, mixture_wav, tmp_path):
    existing = tmp_path / "falcon" / "vocals.nosuchcodec"
    existing.parent.mkdir()
    existing.write_bytes(b"user data")
    separator = Separator(tiny_4stems, multiprocess=False)
    with pytest.raises(SpleeterError, match="vocals.nosuchcodec"):
        separator.separate_to_file(str(mixture_wav), str(tmp_path), codec="nosuchcodec")
    assert [p.name for p in (tmp_path / "falcon").iterdir()] == ["vocals.nosuchcodec"]
    assert existing.read_bytes() == b"user data"


def test_mwf_outputs(tiny_4stems, mixture):
    separator = Separator(tiny_4stems, MWF=True, multiprocess=False)
    sources = separator.separate(mixture[:100_000])
    assert list(sources) == INSTRUMENTS
    assert all(s.shape == (100_000, 2) and s.dtype == np.float32 for s in sources.values())
    ratio = Separator(tiny_4stems, multiprocess=False).separate(mixture[:100_000])
    assert np.abs(sources["vocals"] - ratio["vocals"]).max() > 1e-4  # a different estimator


def test_missing_model_without_network_is_a_clear_error(tiny_4stems, tmp_path, mixture):
    separator = Separator(variant(tiny_4stems, tmp_path, model_dir="4stems"), multiprocess=False)
    with pytest.raises(SpleeterError, match=r"Cannot download model 4stems .*MODEL_PATH"):
        separator.separate(mixture[:10_000])


def test_configuration_missing_keys(tmp_path):
    path = tmp_path / "partial.json"
    path.write_text(json.dumps({"model_dir": "x", "sample_rate": 44100}))
    with pytest.raises(SpleeterError, match="partial.json lacks mix_name, instrument_list"):
        Separator(str(path))


def test_blstm_separates_on_the_cpu(tmp_path, mixture):
    """Upstream's BLSTM (CuDNNLSTM) could only run on a GPU; this one runs anywhere."""
    from modelkit import write_config, write_model

    config = {
        "model_dir": str(tmp_path / "blstm"),
        "mix_name": "mix",
        "instrument_list": ["vocals", "accompaniment"],
        "sample_rate": 44100,
        "frame_length": 4096,
        "frame_step": 1024,
        "T": 64,
        "F": 128,
        "n_channels": 2,
        "separation_exponent": 2,
        "mask_extension": "zeros",
        "model": {"type": "blstm.blstm", "params": {"lstm_units": 8}},
    }
    write_model(config, seed=2)
    sources = Separator(write_config(config, tmp_path / "blstm.json"), multiprocess=False).separate(
        mixture[:60_000]
    )
    assert list(sources) == ["vocals", "accompaniment"]
    assert all(s.shape == (60_000, 2) and np.isfinite(s).all() for s in sources.values())
    assert np.abs(sources["vocals"] - sources["accompaniment"]).max() > 1e-4


@pytest.fixture(scope="module")
def one_piece_and_segmented(tiny_4stems):
    whole = Separator(tiny_4stems, multiprocess=False, segment_blocks=None)
    return whole, Separator(tiny_4stems, multiprocess=False, segment_blocks=1)


@pytest.mark.parametrize("n_samples", [268_288, 65 * 1024 - 4096, 64 * 1024 - 4096 + 1, 3000])
def test_segments_give_the_same_samples_as_one_piece(one_piece_and_segmented, mixture, n_samples):
    """Separating a block of T frames at a time equals separating in one piece, whatever the
    length (segment borders fall on block borders; the inverse STFT carries frames across)."""
    waveform = np.tile(mixture, (2, 1))[:n_samples]
    whole, segmented = one_piece_and_segmented
    expected, pieces = whole.separate(waveform), segmented.separate(waveform)
    for name in INSTRUMENTS:
        assert pieces[name].shape == expected[name].shape == (n_samples, 2)
        assert np.abs(pieces[name] - expected[name]).max() < 1e-6, name


def test_wiener_filter_in_segments_equals_one_piece(tiny_4stems, mixture):
    """--mwf runs in two bounded passes (statistics, then filtering segment by segment)."""
    waveform = np.tile(mixture, (2, 1))[:300_000]
    whole = Separator(tiny_4stems, MWF=True, multiprocess=False, segment_blocks=None)
    segmented = Separator(tiny_4stems, MWF=True, multiprocess=False, segment_blocks=1)
    expected, pieces = whole.separate(waveform), segmented.separate(waveform)
    for name in INSTRUMENTS:
        assert np.abs(pieces[name] - expected[name]).max() < 1e-5, name
