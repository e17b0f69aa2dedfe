"""Expanding the command line's inputs: files, directories and glob patterns."""

import glob
import os

AUDIO_EXTENSIONS = frozenset(
    [
        ".aac",
        ".ac3",
        ".aif",
        ".aiff",
        ".alac",
        ".ape",
        ".au",
        ".caf",
        ".flac",
        ".m4a",
        ".mka",
        ".mkv",
        ".mp2",
        ".mp3",
        ".mp4",
        ".oga",
        ".ogg",
        ".opus",
        ".wav",
        ".webm",
        ".wma",
        ".wv",
    ]
)
"""Extensions taken from a directory (any file ffmpeg decodes can still be named directly)."""

_GLOB_CHARACTERS = frozenset("*?[")


def is_audio_file(path: str) -> bool:
    """Whether a directory entry looks like audio (by extension; hidden files excluded)."""
    name = os.path.basename(path)
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in AUDIO_EXTENSIONS


def _directory_files(directory: str, recursive: bool) -> list[str]:
    """Audio files in ``directory`` (and its non-hidden subdirectories with ``recursive``)."""
    found = []
    for root, subdirectories, names in os.walk(directory):
        subdirectories[:] = [name for name in subdirectories if not name.startswith(".")]
        found += [os.path.join(root, name) for name in names]
        if not recursive:
            break
    return sorted(path for path in found if os.path.isfile(path) and is_audio_file(path))


def expand_inputs(arguments: list[str], recursive: bool = False) -> tuple[list[str], list[str]]:
    """The audio files named by ``arguments``, in order and without duplicates.

    A directory stands for the audio files in it (and below it with ``recursive``); a pattern
    with ``*``, ``?`` or ``[`` that is not an existing path is expanded (``**`` spans
    directories). Anything else is kept as given: a missing file is reported when it is read.

    Returns:
        ``(files, problems)``: ``problems`` are one-line messages for arguments that named
        nothing (an empty directory, a pattern matching no file).
    """
    files: list[str] = []
    problems: list[str] = []
    for argument in arguments:
        if os.path.isdir(argument):
            found = _directory_files(argument, recursive)
            if not found:
                problems.append(f"{argument}: no audio files in this directory")
        elif not os.path.exists(argument) and _GLOB_CHARACTERS & set(argument):
            found = sorted(
                path for path in glob.glob(argument, recursive=True) if os.path.isfile(path)
            )
            if not found:
                problems.append(f"{argument}: no file matches this pattern")
        else:
            found = [argument]
        files.extend(path for path in found if path not in files)
    return files, problems
