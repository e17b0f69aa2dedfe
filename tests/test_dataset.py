"""The training input pipeline (``spleeter.dataset``): upstream's semantics, plus random access."""

import os

import numpy as np
import pytest
import soundfile

from spleeter.audio.adapter import AudioAdapter
from spleeter.audio.spectrogram import chunk_magnitude
from spleeter.dataset import (
    DatasetBuilder,
    ExampleStream,
    SpectrogramCache,
    compute_segments,
    get_training_dataset,
    get_validation_dataset,
    read_songs,
    segment_starts,
)

RATE = 44100
PARAMS = {
    "mix_name": "mix",
    "instrument_list": ["vocals", "other"],
    "sample_rate": RATE,
    "frame_length": 4096,
    "frame_step": 1024,
    "T": 64,
    "F": 64,
    "n_channels": 2,
    "chunk_duration": 4.0,
    "n_chunks_per_song": 2,
    "batch_size": 2,
    "random_seed": 3,
}


@pytest.fixture
def dataset(tmp_path, monkeypatch):
    """Two songs whose three stems are the same noise (so crops can be compared); the CSV
    paths are relative to the working directory."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    lines = ["mix_path,vocals_path,other_path,duration"]
    for song, seconds in enumerate((7, 9)):
        data = rng.uniform(-0.5, 0.5, (seconds * RATE, 2)).astype(np.float32)
        for stem in ("mix", "vocals", "other"):
            soundfile.write(tmp_path / f"{song}_{stem}.wav", data, RATE, subtype="FLOAT")
        lines.append(f"{song}_mix.wav,{song}_vocals.wav,{song}_other.wav,{seconds}")
    (tmp_path / "train.csv").write_text("\n".join(lines) + "\n")
    return dict(
        PARAMS, train_csv=str(tmp_path / "train.csv"), validation_csv=str(tmp_path / "train.csv")
    )


def test_segment_placement_is_upstreams():
    assert segment_starts(30.0, 20.0, 2) == [0.5, 9.5]
    assert segment_starts(30.0, 20.0, 3) == [0.5, 5.0, 9.5]
    assert segment_starts(30.0, 12.0, 1) == [9.0]
    assert segment_starts(5.0, 12.0, 1) == [0.0]
    assert segment_starts(10.0, 20.0, 2) == [0.5, 0.0]


def test_segments_are_ordered_like_upstreams_concatenation(dataset):
    songs = read_songs(dataset["train_csv"], dataset)
    segments = compute_segments(songs, 4.0, 3)
    assert [(s.song.line, s.start) for s in segments] == [
        (2, 2.5),
        (3, 4.5),
        (2, 0.5),
        (3, 0.5),
        (2, 1.5),
        (3, 2.5),
    ]


def test_chunk_magnitude_matches_tensorflow():
    from spleeter.engines.tensorflow import import_tensorflow

    tf = import_tensorflow()
    waveform = np.random.default_rng(1).standard_normal((30000, 2)).astype(np.float32)
    ours = chunk_magnitude(waveform, 4096, 1024, 1024)
    stft = tf.signal.stft(
        waveform.T, 4096, 1024, window_fn=lambda n, dtype: tf.signal.hann_window(n, dtype=dtype)
    )
    reference = np.abs(stft.numpy()).transpose(1, 2, 0)[:, :1024]
    assert ours.shape == reference.shape == (1 + (30000 - 4096) // 1024, 1024, 2)
    np.testing.assert_allclose(ours, reference, atol=1e-4 * reference.max())


def stream(params, **options) -> ExampleStream:
    builder = DatasetBuilder(
        params, AudioAdapter.default(), "", random_seed=params["random_seed"], chunk_duration=4.0
    )
    songs = read_songs(params["train_csv"], params)
    segments = compute_segments(songs, 4.0, 2)
    defaults = dict(shuffle=True, random_time_crop=True, convert_to_uint=True, cache=None)
    return ExampleStream(builder, segments, **{**defaults, **options})


def test_examples_are_synchronised_random_access_and_reshuffled(dataset, tmp_path):
    first = stream(dataset)
    examples = [first.example(i) for i in range(8)]
    for example in examples:
        assert set(example) == {"mix", "vocals", "other"}
        assert example["mix"].shape == (64, 64, 2) and example["mix"].dtype == np.float32
        np.testing.assert_array_equal(example["mix"], example["vocals"])
        np.testing.assert_array_equal(example["mix"], example["other"])
    again = stream(dataset)
    np.testing.assert_array_equal(again.example(5)["mix"], examples[5]["mix"])
    orders = [[first.segment_index(4 * e + k) for k in range(4)] for e in range(6)]
    assert all(sorted(order) == [0, 1, 2, 3] for order in orders)
    assert len({tuple(order) for order in orders}) > 1


def test_uint8_storage_keeps_magnitudes_within_half_a_decibel(dataset, tmp_path):
    quantised = stream(dataset).example(3)["vocals"]
    exact = stream(dataset, convert_to_uint=False).example(3)["vocals"]
    ratio_db = 20 * np.log10(quantised / exact)
    assert np.abs(ratio_db).max() < 0.5


def test_cache_is_reused_and_invalidated(dataset, tmp_path, monkeypatch):
    cache = SpectrogramCache(str(tmp_path / "cache" / "training"))
    reference = stream(dataset, cache=cache).example(2)
    assert len(list((tmp_path / "cache" / "training").glob("*.npz"))) == 1

    def no_decoding(*_args, **_kwargs):
        raise AssertionError("decoded although cached")

    with monkeypatch.context() as patch:
        patch.setattr(DatasetBuilder, "load_chunk", no_decoding)
        cached = stream(dataset, cache=cache).example(2)
    np.testing.assert_array_equal(cached["mix"], reference["mix"])
    for path in tmp_path.glob("*_vocals.wav"):
        os.utime(path, ns=(0, 0))
    stream(dataset, cache=cache).example(2)
    assert len(list((tmp_path / "cache" / "training").glob("*.npz"))) == 2


def test_tf_datasets(dataset, tmp_path):
    batches = list(get_training_dataset(dataset, AudioAdapter.default(), "").take(3))
    features, labels = batches[0]
    assert set(features) == {"mix_spectrogram"}
    assert set(labels) == {"vocals_spectrogram", "other_spectrogram"}
    assert tuple(features["mix_spectrogram"].shape) == (2, 64, 64, 2)
    resumed = next(iter(get_training_dataset(dataset, AudioAdapter.default(), "", start_step=2)))
    np.testing.assert_array_equal(
        resumed[0]["mix_spectrogram"].numpy(), batches[2][0]["mix_spectrogram"].numpy()
    )
    validation = list(get_validation_dataset(dataset, AudioAdapter.default(), ""))
    assert [tuple(f["mix_spectrogram"].shape) for f, _ in validation] == [(2, 64, 64, 2)]
    # Centre crop: the middle T frames of a song's central 12 s chunk (here, the whole song).
    builder = DatasetBuilder(dataset, AudioAdapter.default(), "", chunk_duration=12.0)
    song = read_songs(dataset["train_csv"], dataset)[1]
    chunk = builder.load_chunk(compute_segments([song], 12.0, 1)[0])
    first = int(chunk.frames / 2 - 32)
    np.testing.assert_array_equal(
        validation[0][0]["mix_spectrogram"].numpy()[1], chunk.crop(first, 64)["mix"]
    )


def test_parameter_checks():
    with pytest.raises(ValueError, match="F is too large"):
        DatasetBuilder(dict(PARAMS, F=4096), AudioAdapter.default(), "")
    with pytest.raises(ValueError, match="T is too large"):
        DatasetBuilder(dict(PARAMS, T=512), AudioAdapter.default(), "", chunk_duration=4.0)
