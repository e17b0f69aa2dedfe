"""Audio input/output: codecs, adapters (decode/encode) and spectrogram helpers."""

from enum import StrEnum


class Codec(StrEnum):
    """Output codecs of ``spleeter separate -c``; the value is also the file extension."""

    WAV = "wav"
    MP3 = "mp3"
    OGG = "ogg"
    M4A = "m4a"
    WMA = "wma"
    FLAC = "flac"


class ClipMode(StrEnum):
    """What happens to samples past full scale (|x| > 1)."""

    clamp = "clamp"
    """Clip them to ±1 (upstream's 16-bit output did so without saying; a warning counts them)."""
    rescale = "rescale"
    """Scale the whole stem down so that its peak fits, as Demucs: x / max(1.01 peak, 1)."""
    none = "none"
    """Leave them (a float32 file keeps them; integer encoders saturate, silently)."""
