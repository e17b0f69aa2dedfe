"""Model provider: resolution of model directories and download from a local fake GitHub."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from spleeter import SpleeterError
from spleeter.model.provider import ModelProvider
from spleeter.model.provider.github import GithubModelProvider, compute_file_checksum

REPOSITORY = "acme/models"
RELEASE = "v9"
PREFIX = f"/{REPOSITORY}/releases/download"
MODEL_FILES = {
    "checkpoint": b'model_checkpoint_path: "model"\nall_model_checkpoint_paths: "model"\n',
    "model.index": b"fake index " * 10,
    "model.data-00000-of-00001": bytes(range(256)) * 64,
}


def make_archive(files: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    """A tar.gz archive holding ``files`` (and symbolic ``links``) at its root."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return buffer.getvalue()


def sha256(data: bytes) -> str:
    """The sha256 hex digest of ``data``."""
    return hashlib.sha256(data).hexdigest()


@dataclass
class Route:
    """What the fake server answers for one path."""

    status: int = 200
    body: bytes = b""
    location: str | None = None
    truncate: bool = False


@dataclass
class FakeGithub:
    """A local HTTP server standing for GitHub release downloads."""

    host: str
    routes: dict[str, Route]
    requests: list[str] = field(default_factory=list)


def build_routes() -> dict[str, Route]:
    """The release assets served: good, tampered, truncated, non-tar and unsafe archives."""
    good = make_archive(MODEL_FILES)
    truncated = make_archive({"model.index": os.urandom(4096)})
    not_tar = b"<html>this is not an archive</html>"
    escape = make_archive({"../escaped": b"x"})
    link = make_archive(MODEL_FILES, links={"evil": "../../outside"})
    archives = {
        "2stems": good,
        "tampered": good + b"garbage",
        "truncated": truncated,
        "nottar": not_tar,
        "escape": escape,
        "link": link,
        "nocheckpoint": make_archive({"README.txt": b"verified, but no model"}),
        "nodata": make_archive({"checkpoint": MODEL_FILES["checkpoint"], "model.index": b"x"}),
        "crowded": make_archive({**MODEL_FILES, **{f"f{k}": b"" for k in range(1001)}}),
    }
    index = {name: sha256(data) for name, data in archives.items()}
    index["tampered"] = sha256(good)
    index["missing"] = "0" * 64  # indexed but no archive: 404
    routes = {
        f"{PREFIX}/{RELEASE}/{name}.tar.gz": Route(body=data) for name, data in archives.items()
    }
    routes[f"{PREFIX}/{RELEASE}/truncated.tar.gz"].truncate = True
    routes[f"{PREFIX}/{RELEASE}/unindexed.tar.gz"] = Route(body=good)
    routes[f"{PREFIX}/{RELEASE}/checksum.json"] = Route(body=json.dumps(index).encode())
    for asset in ("2stems.tar.gz", "checksum.json"):
        routes[f"{PREFIX}/moved/{asset}"] = Route(
            status=302, location=f"{PREFIX}/{RELEASE}/{asset}"
        )
    return routes


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGithub]:
    """A fake GitHub on 127.0.0.1; the environment points the default provider at it."""
    routes = build_routes()
    requests: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's API)
            requests.append(self.path)
            route = routes.get(self.path, Route(status=404, body=b"Not Found"))
            self.send_response(route.status)
            if route.location is not None:
                self.send_header("Location", route.location)
            announced = len(route.body) * (2 if route.truncate else 1)
            self.send_header("Content-Length", str(announced))
            self.end_headers()
            self.wfile.write(route.body[: len(route.body) // 2] if route.truncate else route.body)
            self.wfile.flush()
            self.close_connection = True

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    host = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("GITHUB_HOST", host)
    monkeypatch.setenv("GITHUB_REPOSITORY", REPOSITORY)
    monkeypatch.setenv("GITHUB_RELEASE", RELEASE)
    try:
        yield FakeGithub(host, routes, requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def model_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty MODEL_PATH directory for this test."""
    path = tmp_path / "models"
    monkeypatch.setenv("MODEL_PATH", str(path))
    return path


def assert_model_files(directory: Path) -> None:
    """The fake checkpoint files and the probe are in ``directory``."""
    for name, content in MODEL_FILES.items():
        assert (directory / name).read_bytes() == content
    assert (directory / ModelProvider.MODEL_PROBE_PATH).read_text() == "OK"


def test_download_extracts_and_writes_probe(github: FakeGithub, model_path: Path) -> None:
    directory = ModelProvider.default().get("2stems")
    assert directory == os.path.join(str(model_path), "2stems")
    assert_model_files(Path(directory))
    assert github.requests == [
        f"{PREFIX}/{RELEASE}/checksum.json",
        f"{PREFIX}/{RELEASE}/2stems.tar.gz",
    ]
    assert sorted(os.listdir(model_path)) == ["2stems"]  # no temporary leftovers


def test_second_get_makes_no_request(github: FakeGithub, model_path: Path) -> None:
    provider = ModelProvider.default()
    provider.get("2stems")
    count = len(github.requests)
    assert provider.get("2stems") == os.path.join(str(model_path), "2stems")
    assert len(github.requests) == count


def test_existing_directory_without_probe_is_used_as_is(
    github: FakeGithub, model_path: Path
) -> None:
    own = model_path / "2stems"
    own.mkdir(parents=True)
    (own / "checkpoint").write_text("mine")
    assert ModelProvider.default().get("2stems") == str(own)
    assert github.requests == []
    assert os.listdir(own) == ["checkpoint"]


def test_model_trained_in_working_directory_is_used(
    github: FakeGithub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``spleeter train`` writes a relative model_dir under the working directory: separation
    finds it there instead of downloading (upstream issue #626)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_model").mkdir()
    (tmp_path / "my_model" / "checkpoint").write_text("mine")
    assert ModelProvider.default().get("my_model") == "my_model"
    assert github.requests == []
    # A directory under MODEL_PATH still takes precedence.
    (model_path_dir := Path(os.environ["MODEL_PATH"]) / "my_model").mkdir(parents=True)
    assert ModelProvider.default().get("my_model") == str(model_path_dir)


def test_absolute_directory(github: FakeGithub, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere" / "2stems"
    assert ModelProvider.default().get(str(target)) == str(target)
    assert_model_files(target)
    assert github.requests[-1] == f"{PREFIX}/{RELEASE}/2stems.tar.gz"


def test_relative_model_path(
    github: FakeGithub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MODEL_PATH", "relative_models")
    directory = ModelProvider.default().get("2stems")
    assert directory == os.path.join("relative_models", "2stems")
    assert_model_files(tmp_path / "relative_models" / "2stems")


def test_model_path_read_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODEL_PATH")
    assert ModelProvider.model_path() == ModelProvider.DEFAULT_MODEL_PATH
    monkeypatch.setenv("MODEL_PATH", "/some/where")
    assert ModelProvider.model_path() == "/some/where"


def test_redirect_is_followed(
    github: FakeGithub, model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_RELEASE", "moved")
    assert_model_files(Path(ModelProvider.default().get("2stems")))
    assert f"{PREFIX}/moved/2stems.tar.gz" in github.requests
    assert f"{PREFIX}/{RELEASE}/2stems.tar.gz" in github.requests


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("missing", "HTTP error 404"),
        ("unindexed", "No checksum for model unindexed"),
        ("tampered", "corrupted"),
        ("truncated", "cut off"),
        ("nottar", "not a valid tar.gz"),
        ("escape", "unsafe archive"),
        ("link", "unsafe archive"),
        ("nocheckpoint", "no usable checkpoint (no checkpoint index)"),
        ("nodata", "no usable checkpoint (no model.data-* file)"),
        ("crowded", "the archive holds 1004 members"),
    ],
)
def test_failure_leaves_nothing(
    github: FakeGithub, model_path: Path, name: str, problem: str
) -> None:
    with pytest.raises(SpleeterError) as info:
        ModelProvider.default().get(name)
    message = str(info.value)
    assert problem in message
    assert f"model {name} from {github.host}{PREFIX}/{RELEASE}/" in message
    assert "MODEL_PATH" in message and str(model_path / name) in message
    assert "\n" not in message
    assert os.listdir(model_path) == []
    assert not (model_path.parent / "escaped").exists()
    assert not (model_path.parent / "outside").exists()


def test_network_unreachable(model_path: Path) -> None:
    # conftest points GITHUB_HOST at a closed port.
    with pytest.raises(SpleeterError, match=r"2stems .*network unreachable.*MODEL_PATH"):
        ModelProvider.default().get("2stems")
    assert os.listdir(model_path) == []


def test_concurrent_winner_is_kept(github: FakeGithub, model_path: Path) -> None:
    """A process that finishes first keeps its directory; the late one returns it unharmed."""
    target = model_path / "2stems"

    class Racing(GithubModelProvider):
        def download(self, name: str, path: str) -> None:
            super().download(name, path)
            target.mkdir()
            (target / "checkpoint").write_text("winner")
            self.writeProbe(str(target))

    assert Racing.from_environ().get("2stems") == str(target)
    assert (target / "checkpoint").read_text() == "winner"
    assert sorted(os.listdir(model_path)) == ["2stems"]


def test_checksum(github: FakeGithub) -> None:
    provider = GithubModelProvider.from_environ()
    body = github.routes[f"{PREFIX}/{RELEASE}/2stems.tar.gz"].body
    assert provider.checksum("2stems") == sha256(body)
    assert provider.checksum("missing") == "0" * 64
    with pytest.raises(SpleeterError, match="No checksum for model laisse moi stems"):
        provider.checksum("laisse moi stems")


def test_compute_file_checksum(tmp_path: Path) -> None:
    path = tmp_path / "file.bin"
    path.write_bytes(b"spleeter" * 10000)
    assert compute_file_checksum(path) == sha256(b"spleeter" * 10000)


def test_urls_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("GITHUB_HOST", "GITHUB_REPOSITORY", "GITHUB_RELEASE"):
        monkeypatch.delenv(variable, raising=False)
    default = ModelProvider.default()
    assert isinstance(default, GithubModelProvider)
    assert default.archive_url("2stems") == (
        "https://github.com/deezer/spleeter/releases/download/v1.4.0/2stems.tar.gz"
    )
    monkeypatch.setenv("GITHUB_HOST", "https://mirror.example/")
    monkeypatch.setenv("GITHUB_REPOSITORY", "me/fork")
    monkeypatch.setenv("GITHUB_RELEASE", "v2")
    provider = GithubModelProvider.from_environ()
    assert (
        provider.archive_url("4stems")
        == "https://mirror.example/me/fork/releases/download/v2/4stems.tar.gz"
    )
    assert provider.release_url("checksum.json").endswith(
        "/me/fork/releases/download/v2/checksum.json"
    )


def test_probe(tmp_path: Path) -> None:
    ModelProvider.writeProbe(str(tmp_path))
    assert (tmp_path / ".probe").read_text() == "OK"


def test_archive_extracting_too_much_is_refused(
    github: FakeGithub, model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from spleeter.model.provider import github as provider

    monkeypatch.setattr(provider, "MAX_EXTRACTED_BYTES", 1000)
    with pytest.raises(SpleeterError, match="would extract to 16"):
        ModelProvider.default().get("2stems")
    assert os.listdir(model_path) == []
