"""The ffmpeg audio adapter on real audio: decoding, resampling, windows, codecs and errors."""

import json
import logging
import os
import pickle
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile

from spleeter import SpleeterError
from spleeter.audio import Codec
from spleeter.audio.adapter import AudioAdapter
from spleeter.audio.ffmpeg import FFMPEGProcessAudioAdapter
from spleeter.utils.logging import logger

RATE = 44100


@pytest.fixture(scope="module")
def adapter() -> AudioAdapter:
    """The shared default adapter."""
    return AudioAdapter.default()


@pytest.fixture(scope="module")
def mixture(musdb_stems: dict[str, np.ndarray]) -> np.ndarray:
    """The excerpt's mixture clipped to [-1, 1] (AAC decoding overshoots slightly)."""
    return np.clip(musdb_stems["mixture"], -1.0, 1.0)


def probe(path: Path, entries: str) -> dict:
    """``ffprobe -show_entries`` of the first audio stream, as JSON."""
    command = ["ffprobe", "-v", "error", "-select_streams", "a:0", "-of", "json"]
    command += ["-show_entries", entries, str(path)]
    return json.loads(subprocess.run(command, check=True, capture_output=True).stdout)


def aligned(reference: np.ndarray, decoded: np.ndarray, max_lag: int = 4096) -> tuple:
    """First channels of both signals, shifted by the lag maximising their cross-correlation
    (lossy codecs may add or drop an encoder delay)."""
    x, y = reference[:, 0].astype(np.float64), decoded[:, 0].astype(np.float64)
    n = min(len(x), len(y))
    spectrum = np.fft.rfft(y[:n], 2 * n) * np.conj(np.fft.rfft(x[:n], 2 * n))
    correlation = np.fft.irfft(spectrum)
    lags = np.r_[np.arange(max_lag), np.arange(-max_lag, 0)]
    lag = lags[np.argmax(np.r_[correlation[:max_lag], correlation[-max_lag:]])]
    return (x[: n - lag], y[lag:n]) if lag >= 0 else (x[-lag:n], y[: n + lag])


def assert_one_line_naming(error: pytest.ExceptionInfo, path: Path, *words: str) -> None:
    """The error message is one line, names ``path`` and contains ``words``."""
    message = str(error.value)
    assert "\n" not in message
    assert str(path) in message
    for word in words:
        assert word in message


# Adapter objects


def test_default_adapter(adapter: AudioAdapter) -> None:
    assert isinstance(adapter, FFMPEGProcessAudioAdapter)
    assert adapter is AudioAdapter._DEFAULT
    assert AudioAdapter.default() is adapter
    assert AudioAdapter.get(None) is adapter


def test_get_returns_new_instance(adapter: AudioAdapter) -> None:
    other = AudioAdapter.get("spleeter.audio.ffmpeg.FFMPEGProcessAudioAdapter")
    assert isinstance(other, FFMPEGProcessAudioAdapter)
    assert other is not adapter


@pytest.mark.parametrize("descriptor", ["builtins.dict", "no.such.Module"])
def test_get_invalid(descriptor: str) -> None:
    with pytest.raises(SpleeterError):
        AudioAdapter.get(descriptor)


def test_picklable(adapter: AudioAdapter, mixture_wav: Path) -> None:
    clone = pickle.loads(pickle.dumps(adapter))
    assert isinstance(clone, FFMPEGProcessAudioAdapter)
    assert clone.load(mixture_wav, duration=0.1)[0].shape == (4410, 2)


@pytest.mark.parametrize("missing", ["ffmpeg", "ffprobe"])
def test_missing_binary(monkeypatch: pytest.MonkeyPatch, missing: str) -> None:
    which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name: None if name == missing else which(name))
    with pytest.raises(SpleeterError, match=f"^{missing} binary not found.*apt-get install"):
        FFMPEGProcessAudioAdapter()


# Loading


def test_load_stem_mp4(adapter: AudioAdapter, musdb_excerpt: Path, musdb_stems: dict) -> None:
    waveform, sample_rate = adapter.load(musdb_excerpt)
    duration = float(probe(musdb_excerpt, "format=duration")["format"]["duration"])
    assert sample_rate == RATE and isinstance(sample_rate, int)
    assert waveform.dtype == np.float32 and waveform.ndim == 2 and waveform.shape[1] == 2
    assert abs(waveform.shape[0] - duration * RATE) <= 1
    peak = np.abs(waveform).max()
    assert 0.1 < peak < 1.1  # AAC decoding may overshoot full scale slightly
    np.testing.assert_allclose(waveform, musdb_stems["mixture"], atol=1e-6)  # first stream
    assert waveform.flags.writeable


@pytest.mark.parametrize("kind", [str, os.fsencode, Path])
@pytest.mark.parametrize("dtype", [b"float32", "float32", np.float32, np.float64])
def test_load_path_and_dtype(adapter: AudioAdapter, mixture_wav: Path, kind, dtype) -> None:
    waveform, sample_rate = adapter.load(kind(mixture_wav), duration=0.5, dtype=dtype)
    assert waveform.dtype == np.dtype(dtype.decode() if isinstance(dtype, bytes) else dtype)
    assert waveform.shape == (RATE // 2, 2) and sample_rate == RATE


def test_load_wav_matches_source(adapter: AudioAdapter, mixture_wav: Path) -> None:
    waveform, _ = adapter.load(mixture_wav)
    expected, _ = soundfile.read(mixture_wav, dtype="float32")
    np.testing.assert_array_equal(waveform, expected)


@pytest.mark.parametrize("rate", [16000, 22050])
def test_load_resampled(adapter: AudioAdapter, mixture_wav: Path, rate: int) -> None:
    full, _ = adapter.load(mixture_wav)
    waveform, sample_rate = adapter.load(mixture_wav, sample_rate=float(rate))
    assert sample_rate == rate and isinstance(sample_rate, int)
    assert waveform.shape[1] == 2
    assert abs(waveform.shape[0] - full.shape[0] * rate / RATE) <= 2


@pytest.fixture(scope="module")
def full_loads(adapter, mixture_wav: Path, musdb_excerpt: Path) -> dict[str, tuple]:
    """Each test file and its full decode by the adapter."""
    paths = {"mixture_wav": mixture_wav, "musdb_excerpt": musdb_excerpt}
    return {name: (path, adapter.load(path)[0]) for name, path in paths.items()}


@pytest.mark.parametrize("source", ["mixture_wav", "musdb_excerpt"])
@pytest.mark.parametrize(
    ("offset", "duration"), [(1.0, 2.0), (2.3, 1.7), (0.5, None), (1 / 3, 1 / 7), (5.9, 3.0)]
)
def test_offset_duration(adapter, full_loads, source: str, offset: float, duration) -> None:
    path, full = full_loads[source]
    waveform, sample_rate = adapter.load(path, offset=offset, duration=duration)
    start = round(offset * RATE)
    expected = full.shape[0] - start
    if duration is not None:
        expected = min(expected, duration * RATE)
    assert sample_rate == RATE and waveform.shape[1] == 2
    assert abs(waveform.shape[0] - expected) <= 1
    np.testing.assert_array_equal(waveform, full[start : start + waveform.shape[0]])


def test_load_mono(adapter: AudioAdapter, mixture: np.ndarray, tmp_path: Path) -> None:
    path = tmp_path / "mono.wav"
    soundfile.write(path, mixture[:, 0], RATE, subtype="PCM_16")
    waveform, sample_rate = adapter.load(path)
    assert waveform.shape == (mixture.shape[0], 1) and sample_rate == RATE
    assert np.abs(waveform[:, 0] - mixture[:, 0]).max() <= 2**-15


# Saving


@pytest.mark.parametrize("codec", list(Codec))
def test_save_round_trip(
    adapter: AudioAdapter, mixture: np.ndarray, tmp_path: Path, codec: Codec
) -> None:
    path = tmp_path / f"out.{codec}"
    adapter.save(path, mixture, RATE, codec, "128k")
    assert os.listdir(tmp_path) == [path.name]  # no temporary file left
    waveform, sample_rate = adapter.load(path)
    assert sample_rate == RATE and waveform.shape[1] == 2
    if codec in (Codec.WAV, Codec.FLAC):
        info = soundfile.info(path)
        assert (info.samplerate, info.channels, info.frames) == (RATE, 2, mixture.shape[0])
        if codec == Codec.WAV:
            assert info.subtype == "PCM_16"  # ffmpeg's default for .wav, as upstream
        bits = {"PCM_16": 16, "PCM_24": 24}[info.subtype]
        assert waveform.shape == mixture.shape
        assert np.abs(waveform - mixture).max() <= 2.0 ** -(bits - 1) * 1.001  # 1 LSB
    else:
        # Lossy: encoder delay may shift/shorten the signal (wmav2 drops 2048 samples); at
        # 128 kb/s these codecs measure 19-25 dB SNR on this excerpt, so 12 dB and a 0.95
        # correlation catch a broken pipeline (wrong rate/channels/layout gives ~0) with margin.
        assert abs(waveform.shape[0] - mixture.shape[0]) <= 2048
        reference, decoded = aligned(mixture, waveform)
        assert np.corrcoef(reference, decoded)[0, 1] > 0.95
        snr = 10 * np.log10(np.sum(reference**2) / np.sum((reference - decoded) ** 2))
        assert snr > 12.0


def test_save_mono_vector(adapter: AudioAdapter, mixture: np.ndarray, tmp_path: Path) -> None:
    path = tmp_path / "mono.flac"
    adapter.save(str(path), mixture[:, 1], RATE)  # shape (n,) is mono
    waveform, _ = adapter.load(path)
    assert waveform.shape == (mixture.shape[0], 1)
    assert np.abs(waveform[:, 0] - mixture[:, 1]).max() <= 2**-15


@pytest.mark.parametrize("bitrate", ["128k", "320k"])
def test_save_mp3_bitrate(adapter, mixture: np.ndarray, tmp_path: Path, bitrate: str) -> None:
    path = tmp_path / "out.mp3"
    adapter.save(path, mixture, RATE, Codec.MP3, bitrate)
    stream = probe(path, "stream=codec_name,bit_rate,sample_rate")["streams"][0]
    assert stream["codec_name"] == "mp3" and stream["sample_rate"] == str(RATE)
    requested = int(bitrate.removesuffix("k")) * 1000
    assert abs(int(stream["bit_rate"]) - requested) <= 0.05 * requested


def test_save_resampled_rate(adapter, mixture: np.ndarray, tmp_path: Path) -> None:
    path = tmp_path / "low.wav"
    adapter.save(path, mixture[:16000], 16000.0)
    info = soundfile.info(path)
    assert (info.samplerate, info.frames, info.channels) == (16000, 16000, 2)


@pytest.fixture
def debug_logging() -> Iterator[None]:
    """The ``spleeter`` logger at DEBUG level for one test."""
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    yield
    logger.setLevel(previous)


@pytest.mark.usefixtures("debug_logging")
def test_save_logs_and_overwrites(adapter, mixture: np.ndarray, tmp_path: Path, capsys) -> None:
    path = tmp_path / "out.wav"
    path.write_bytes(b"old content")
    path.chmod(0o640)
    adapter.save(path, mixture[:1000], RATE)
    output = capsys.readouterr().out
    assert f"DEBUG:spleeter:Writing file {path}" in output
    assert f"DEBUG:spleeter:File {path} written succesfully" in output
    assert soundfile.info(path).frames == 1000
    assert path.stat().st_mode & 0o777 == 0o640  # the replaced file's permissions are kept
    assert os.listdir(tmp_path) == ["out.wav"]


def test_save_in_current_directory(adapter, mixture, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    adapter.save("bare.wav", mixture[:1000], RATE)  # upstream rejected a bare file name
    assert soundfile.info(tmp_path / "bare.wav").frames == 1000


# Errors


def _missing(tmp_path: Path) -> Path:
    return tmp_path / "missing.wav"


def _directory(tmp_path: Path) -> Path:
    (tmp_path / "folder.wav").mkdir()
    return tmp_path / "folder.wav"


def _text(tmp_path: Path) -> Path:
    path = tmp_path / "notes.mp3"
    path.write_text("this is not audio\n" * 20)
    return path


def _empty(tmp_path: Path) -> Path:
    path = tmp_path / "empty.wav"
    path.touch()
    return path


def _header_only(tmp_path: Path) -> Path:
    path = tmp_path / "header.wav"
    soundfile.write(path, np.zeros((0, 2)), RATE, subtype="PCM_16")
    assert path.stat().st_size == 44
    return path


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (_missing, ["file not found"]),
        (_directory, ["directory"]),
        (_text, ["not a readable audio file"]),
        (_empty, ["empty"]),
        (_header_only, ["no audio samples"]),
    ],
)
def test_load_errors(adapter, tmp_path: Path, make: Callable[[Path], Path], words) -> None:
    path = make(tmp_path)
    with pytest.raises(SpleeterError) as error:
        adapter.load(path)
    assert_one_line_naming(error, path, *words)


def test_load_offset_past_end(adapter: AudioAdapter, musdb_excerpt: Path) -> None:
    with pytest.raises(SpleeterError) as error:
        adapter.load(musdb_excerpt, offset=10.0, duration=5.0)
    assert_one_line_naming(error, musdb_excerpt, "past the end")


@pytest.mark.parametrize(
    "window", [{"offset": -1.0}, {"duration": 0.0}, {"sample_rate": 22050.5}, {"offset": np.nan}]
)
def test_load_invalid_arguments(adapter, mixture_wav: Path, window: dict) -> None:
    with pytest.raises(SpleeterError):
        adapter.load(mixture_wav, **window)


def test_save_missing_directory(adapter, mixture: np.ndarray, tmp_path: Path) -> None:
    directory = tmp_path / "missing"
    with pytest.raises(SpleeterError, match="output directory does not exist") as error:
        adapter.save(directory / "out.wav", mixture, RATE)
    assert_one_line_naming(error, directory)
    (tmp_path / "file").touch()
    with pytest.raises(SpleeterError, match="output directory does not exist"):
        adapter.save(tmp_path / "file" / "out.wav", mixture, RATE)
    assert sorted(os.listdir(tmp_path)) == ["file"]


@pytest.mark.parametrize(
    ("name", "codec", "words"),
    [
        ("out.wav", "nosuchcodec", ["Unknown encoder 'nosuchcodec'"]),
        ("out.xyz", None, ["suitable output format"]),
        ("out.mp3", Codec.M4A, ["cannot write"]),  # aac in an mp3 container
    ],
)
def test_save_encoder_failure_keeps_target(
    adapter, mixture: np.ndarray, tmp_path: Path, name: str, codec, words
) -> None:
    path = tmp_path / name
    path.write_bytes(b"previous content")
    with pytest.raises(SpleeterError) as error:
        adapter.save(path, mixture, RATE, codec)
    assert_one_line_naming(error, path, *words)
    assert ".part-" not in str(error.value)
    assert os.listdir(tmp_path) == [name]
    assert path.read_bytes() == b"previous content"


def test_save_onto_directory(adapter, mixture: np.ndarray, tmp_path: Path) -> None:
    target = _directory(tmp_path)
    with pytest.raises(SpleeterError) as error:
        adapter.save(target, mixture[:1000], RATE)
    assert_one_line_naming(error, target)
    assert os.listdir(tmp_path) == [target.name] and not os.listdir(target)


def test_save_unwritable_directory(adapter, mixture: np.ndarray, tmp_path: Path) -> None:
    """A directory where files cannot be created: a read-only one for a normal user; for root,
    who writes anywhere, sysfs (the kernel refuses to create files there, even for root)."""
    if os.geteuid() == 0:
        directory = Path("/sys")
    else:
        directory = tmp_path / "readonly"
        directory.mkdir(mode=0o555)
    before = sorted(os.listdir(directory))
    with pytest.raises(SpleeterError, match="Permission denied") as error:
        adapter.save(directory / "spleeter-out.wav", mixture[:1000], RATE)
    assert_one_line_naming(error, directory / "spleeter-out.wav")
    assert sorted(os.listdir(directory)) == before


def test_save_invalid_waveform(adapter, tmp_path: Path) -> None:
    with pytest.raises(SpleeterError, match="shape"):
        adapter.save(tmp_path / "out.wav", np.zeros((10, 2, 2), np.float32), RATE)
    assert os.listdir(tmp_path) == []
