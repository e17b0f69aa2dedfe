"""The family seam: a family that observes the whole track and decides its sources per track
(as the clustering family will) runs through the same Separator, pipeline and writers."""

import json

import numpy as np
import pytest
import soundfile

from spleeter.model.registry import ARCHITECTURES, Architecture
from spleeter.separation import FAMILIES
from spleeter.utils.configuration import load_configuration

EVENTS: list[str] = []


class HalvesFamily:
    """Two passes; the number of sources depends on the track (1 per 80k samples, 2 to 3)."""

    name = "halves"
    named_sources = False

    def __init__(self, params, engine, **options):
        self.frame_step = int(params["frame_step"])

    def declared_sources(self):
        return None

    def track(self):
        return HalvesTrack(self)


class HalvesTrack:
    passes = 2

    def __init__(self, family):
        self.frames = 0
        self.family = family

    def observe(self, spectrum):
        EVENTS.append("observe")
        self.frames += spectrum.shape[0]

    def sources(self):
        EVENTS.append("sources")
        count = int(np.clip(self.frames * self.family.frame_step // 80_000, 2, 3))
        return [f"source_{k + 1}" for k in range(count)]

    def separate(self, spectrum):
        EVENTS.append("separate")
        names = self.sources()
        return {name: spectrum / len(names) for name in names}


@pytest.fixture
def halves_config(tmp_path, monkeypatch):
    monkeypatch.setitem(
        ARCHITECTURES,
        "test.halves",
        Architecture("test.halves", "spleeter.model.functions.unet:unet", "halves", "separation"),
    )
    monkeypatch.setitem(FAMILIES, "halves", f"{__name__}:HalvesFamily")
    params = load_configuration("spleeter:2stems")
    params["model"] = {"type": "test.halves"}
    path = tmp_path / "halves.json"
    path.write_text(json.dumps(params))
    EVENTS.clear()
    return str(path)


def test_sources_decided_per_track_before_any_writer_opens(halves_config, musdb_stems, tmp_path):
    from spleeter.audio.adapter import AudioAdapter
    from spleeter.separator import Separator

    mixture = musdb_stems["mixture"]
    separator = Separator(halves_config, segment_blocks=1)
    assert separator.instruments == []  # not declared: decided per track
    sources = separator.separate(mixture)
    assert list(sources) == ["source_1", "source_2", "source_3"]  # 6 s: 268k samples
    total = sum(sources.values())
    assert total.shape == mixture.shape
    assert np.max(np.abs(total - mixture)) < 1e-4
    # Pass one covers every segment before the sources are asked, pass two comes after.
    first_separate = EVENTS.index("separate")
    assert EVENTS.index("sources") < first_separate
    assert "observe" not in EVENTS[first_separate:]

    wav = tmp_path / "song.wav"
    soundfile.write(wav, mixture, 44100, subtype="FLOAT")
    adapter = AudioAdapter.default()
    opened: list[list[str]] = []

    def paths(names):
        opened.append(list(names))
        return separator.output_paths(str(wav), str(tmp_path / "out"), instruments=names)

    with adapter.open_reader(str(wav), sample_rate=44100) as reader:
        separator.separate_reader(
            reader,
            paths,
            audio_adapter=adapter,
            reopen=lambda: adapter.open_reader(str(wav), sample_rate=44100),
        )
    assert opened == [["source_1", "source_2", "source_3"]]
    written = sorted(p.name for p in (tmp_path / "out" / "song").iterdir())
    assert written == ["source_1.wav", "source_2.wav", "source_3.wav"]
    first, _ = soundfile.read(tmp_path / "out" / "song" / "source_1.wav")
    assert first.shape == mixture.shape
    assert np.max(np.abs(first - mixture / 3)) < 2 / 32768  # 16-bit file
