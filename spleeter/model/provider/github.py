"""A model provider downloading the models published as GitHub release assets.

Each model is an archive ``{host}/{repository}/releases/download/{release}/{name}.tar.gz``
whose sha256 is listed in the ``checksum.json`` index of the same release. Host, repository
and release default to Deezer's and may be overridden with ``GITHUB_HOST``,
``GITHUB_REPOSITORY`` and ``GITHUB_RELEASE`` (e.g. to use a mirror).

Example::

    >>> provider = GithubModelProvider("https://github.com", "deezer/spleeter", "v1.4.0")
    >>> provider.download("2stems", "/path/to/pretrained_models/2stems")
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.client
import json
import os
import posixpath
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from typing import IO, Any

from ... import SpleeterError
from ...utils.logging import logger
from ..checkpoint import checkpoint_problem
from . import ModelProvider

__all__ = ["GithubModelProvider", "compute_file_checksum"]

TIMEOUT: float = 60.0
"""Seconds without any network progress after which a request is abandoned."""

CHUNK_SIZE: int = 1 << 16
"""Bytes read at a time while downloading and hashing."""

MAX_MEMBERS: int = 1000
"""Most members a model archive may hold (released models hold 3 or 4 files)."""

MAX_EXTRACTED_BYTES: int = 4 << 30
"""Most bytes a model archive may extract to (released checkpoints are under 200 MB)."""


def compute_file_checksum(path: str | os.PathLike[str]) -> str:
    """The sha256 of the file at ``path``, as a hexadecimal string."""
    sha256 = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(CHUNK_SIZE), b""):
            sha256.update(chunk)
    return sha256.hexdigest()


class GithubModelProvider(ModelProvider):
    """A :class:`ModelProvider` fetching model archives from a GitHub release."""

    DEFAULT_HOST: str = "https://github.com"
    DEFAULT_REPOSITORY: str = "deezer/spleeter"

    CHECKSUM_INDEX: str = "checksum.json"
    LATEST_RELEASE: str = "v1.4.0"
    RELEASE_PATH: str = "releases/download"

    def __init__(self, host: str, repository: str, release: str) -> None:
        """Provider for ``repository`` (``owner/name``) on ``host`` at release ``release``."""
        self._host: str = host
        self._repository: str = repository
        self._release: str = release

    @classmethod
    def from_environ(cls) -> GithubModelProvider:
        """A provider configured by ``GITHUB_HOST``, ``GITHUB_REPOSITORY``, ``GITHUB_RELEASE``."""
        return cls(
            os.environ.get("GITHUB_HOST", cls.DEFAULT_HOST),
            os.environ.get("GITHUB_REPOSITORY", cls.DEFAULT_REPOSITORY),
            os.environ.get("GITHUB_RELEASE", cls.LATEST_RELEASE),
        )

    def release_url(self, filename: str) -> str:
        """The URL of release asset ``filename``."""
        host = self._host.rstrip("/")
        return "/".join((host, self._repository, self.RELEASE_PATH, self._release, filename))

    def archive_url(self, name: str) -> str:
        """The URL of the archive of model ``name``."""
        return self.release_url(f"{name}.tar.gz")

    def checksum(self, name: str) -> str:
        """The reference sha256 of model ``name``'s archive, read from the release index.

        Raises:
            SpleeterError: If the index cannot be read or does not list ``name``.
        """
        url = self.release_url(self.CHECKSUM_INDEX)
        try:
            with _open(url) as response:
                index = json.loads(response.read())
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            raise _failure(name, url, _describe(error)) from error
        except ValueError as error:
            raise _failure(name, url, "the checksum index is not valid JSON") from error
        if not isinstance(index, dict) or not isinstance(index.get(name), str):
            raise _failure(name, url, f"No checksum for model {name} in the checksum index")
        return index[name]

    def download(self, name: str, path: str) -> None:
        """Download, verify and extract model ``name`` into directory ``path``.

        The archive goes to a temporary file next to ``path``, removed in every case.

        Raises:
            SpleeterError: If the model cannot be downloaded, is corrupted or is not an archive.
        """
        url = self.archive_url(name)
        logger.info(f"Downloading model archive {url}")
        expected = self.checksum(name)
        parent = os.path.dirname(os.path.abspath(path))
        with _temporary_file(parent, prefix=f".{name}-", suffix=".tar.gz.part") as archive:
            _fetch(url, archive, name)
            archive.close()
            logger.info("Validating archive checksum")
            if compute_file_checksum(archive.name) != expected.lower():
                raise _failure(
                    name, url, "downloaded file is corrupted (checksum mismatch), please retry"
                )
            logger.info(f"Extracting downloaded {name} archive")
            _extract(archive.name, path, name, url)
        problem = checkpoint_problem(path)
        if problem is not None:  # installed, it would fail every run and never be re-fetched
            raise _failure(name, url, f"the archive holds no usable checkpoint ({problem})")
        logger.info(f"{name} model file(s) extracted")


def _failure(name: str, url: str, problem: str) -> SpleeterError:
    """The error reporting that model ``name`` could not be obtained from ``url``."""
    return SpleeterError(f"Cannot download model {name} from {url}: {problem}.")


def _describe(error: BaseException) -> str:
    """A short description of a network ``error``."""
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP error {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        return f"network unreachable ({error.reason})"
    if isinstance(error, TimeoutError):
        return "the connection timed out"
    return f"the connection failed ({error.__class__.__name__}: {error})"


def _open(url: str) -> http.client.HTTPResponse:
    """Send a GET request to ``url`` (redirects followed, proxies honoured)."""
    request = urllib.request.Request(url, headers={"User-Agent": "spleeter"})
    return urllib.request.urlopen(request, timeout=TIMEOUT)


@contextlib.contextmanager
def _temporary_file(directory: str, prefix: str, suffix: str) -> Iterator[IO[bytes]]:
    """A binary temporary file in ``directory``, deleted on exit."""
    with tempfile.NamedTemporaryFile(
        prefix=prefix, suffix=suffix, dir=directory, delete=False
    ) as stream:
        try:
            yield stream
        finally:
            stream.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(stream.name)


def _fetch(url: str, destination: IO[bytes], name: str) -> None:
    """Stream ``url`` into ``destination``, rejecting a transfer that was cut off."""
    try:
        with _open(url) as response:
            length = _content_length(response)
            with _progress(length, name) as progress:
                received = 0
                while chunk := response.read(CHUNK_SIZE):
                    destination.write(chunk)
                    received += len(chunk)
                    progress(len(chunk))
    except http.client.IncompleteRead as error:
        received = len(error.partial)
        length = received + (error.expected or 0)
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
        raise _failure(name, url, _describe(error)) from error
    if length is not None and received != length:
        raise _failure(
            name, url, f"transfer cut off after {received} of {length} bytes, please retry"
        )


def _content_length(response: http.client.HTTPResponse) -> int | None:
    """The announced length of ``response``'s body, if any."""
    value = response.headers.get("Content-Length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


@contextlib.contextmanager
def _progress(total: int | None, name: str) -> Iterator[Any]:
    """A callback advancing a progress bar by a byte count (a bar only on a terminal)."""
    if not sys.stderr.isatty():
        yield lambda _count: None
        return
    try:
        from tqdm import tqdm
    except ImportError:
        yield lambda _count: None
        return
    with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=name) as bar:
        yield bar.update


def _extract(archive: str, path: str, name: str, url: str) -> None:
    """Extract the tar archive ``archive`` into ``path`` after checking every member."""
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            members = tar.getmembers()
            problem = _unsafe_member(members)
            if problem is not None:
                raise _failure(name, url, f"unsafe archive ({problem})")
            if not any(member.isfile() for member in members):
                raise _failure(name, url, "the archive contains no file")
            if len(members) > MAX_MEMBERS:
                raise _failure(name, url, f"the archive holds {len(members)} members")
            size = sum(member.size for member in members if member.isfile())
            if size > MAX_EXTRACTED_BYTES:
                raise _failure(name, url, f"the archive would extract to {size} bytes")
            os.makedirs(path, exist_ok=True)
            tar.extractall(path=path, filter="data")
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as error:
        detail = " ".join(str(error).split())
        raise _failure(name, url, f"not a valid tar.gz archive ({detail})") from error


def _unsafe_member(members: list[tarfile.TarInfo]) -> str | None:
    """Why one of ``members`` could write outside the extraction directory, or ``None``."""
    for member in members:
        if not _is_contained(member.name):
            return f"member path {member.name!r} escapes the directory"
        if member.issym():
            target = posixpath.join(posixpath.dirname(member.name), member.linkname)
            if posixpath.isabs(member.linkname) or not _is_contained(target):
                return f"link {member.name!r} points outside the directory"
        elif member.islnk():
            if not _is_contained(member.linkname):
                return f"link {member.name!r} points outside the directory"
        elif not (member.isfile() or member.isdir()):
            return f"member {member.name!r} is not a regular file or directory"
    return None


def _is_contained(name: str) -> bool:
    """Whether archive path ``name`` stays inside the extraction directory."""
    normalized = posixpath.normpath(name.replace("\\", "/"))
    return not (
        posixpath.isabs(normalized)
        or normalized == ".."
        or normalized.startswith("../")
        or (len(normalized) > 1 and normalized[1] == ":")
    )
