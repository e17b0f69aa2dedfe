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
