"""The test's HTTP server against the real Starlette app: flow, persistence and bad input."""

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from spleeter.listen import DATABASE_NAME
from spleeter.listen.manifest import load_manifest
from spleeter.listen.server import MAX_BODY_BYTES, create_app
from spleeter.listen.store import Store

TestClient = pytest.importorskip("starlette.testclient").TestClient


def snapshot(folder: Path) -> tuple:
    """Everything a refused request must leave unchanged."""
    with sqlite3.connect(folder / DATABASE_NAME) as db:
        return (
            db.execute("SELECT * FROM ratings ORDER BY 1, 2, 3").fetchall(),
            db.execute(
                "SELECT listener, trial, position FROM submissions ORDER BY 1, 2"
            ).fetchall(),
            db.execute("SELECT token, position FROM listeners ORDER BY 1").fetchall(),
        )


@pytest.fixture
def served(test_folder: Path):
    store = Store(test_folder / DATABASE_NAME)
    listeners = store.ensure_listeners(load_manifest(test_folder), 2)
    client = TestClient(create_app(test_folder, store))
    yield test_folder, client, listeners, store
    client.close()
    store.close()


def grades(trial: dict, value: float = 50.0) -> dict:
    ids = [c["id"] for c in trial["conditions"]]
    return {c: (100.0 if k == 0 else value) for k, c in enumerate(ids)}


def test_session_is_the_listeners_own_random_order(served):
    folder, client, (one, two), _ = served
    manifest = load_manifest(folder)
    session = client.get(f"/api/s/{one.token}").json()
    assert session["position"] == 0 and session["total"] == 3 and not session["done"]
    assert session["sample_rate"] == 44100
    assert session["trials"][0]["id"] == "training" and session["trials"][0]["training"]
    assert sorted(t["id"] for t in session["trials"][1:]) == ["t01", "t02"]
    for trial, (trial_id, order) in zip(session["trials"], one.plan, strict=True):
        assert trial["id"] == trial_id and [c["id"] for c in trial["conditions"]] == order
        truth = manifest.trial(trial_id)
        assert sorted(order) == sorted(c.id for c in truth.conditions)
        text = json.dumps(trial)
        assert not any(name in text for name in ("anchor", "noisy", "dull", "hidden"))
    # the other listener's page names only their own token
    other = client.get(f"/api/s/{two.token}").json()
    assert one.token not in json.dumps(other) and two.token in json.dumps(other)
    page = client.get(f"/t/{one.token}")
    assert page.status_code == 200 and "mushra.js" in page.text
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"


def test_audio_serves_manifest_files_only(served):
    folder, client, (one, _), _ = served
    trial = client.get(f"/api/s/{one.token}").json()["trials"][1]
    url = trial["conditions"][0]["url"]
    answer = client.get(url)
    assert answer.status_code == 200 and answer.headers["content-type"] == "audio/wav"
    assert answer.content == (folder / url.split("/", 3)[3]).read_bytes()
    (folder / "audio" / "secret.wav").write_bytes(b"RIFF not in the manifest")
    base = f"/s/{one.token}/audio"
    for path in [
        f"{base}/secret.wav",
        f"{base}/",
        f"{base}/{trial['id']}/",
        f"{base}/%2e%2e/manifest.json",
        f"{base}/..%2F{DATABASE_NAME}",
        f"{base}/..%2F..%2F..%2Fetc%2Fpasswd",
        f"{base}/{trial['id']}/%2e%2e%2f%2e%2e%2fmanifest.json",
        "/manifest.json",
        f"/{DATABASE_NAME}",
        "/audio/",
        "/static/",
        "/static/index.html",
        "/static/..%2F__init__.py",
        f"/s/not-a-token/{url.split('/', 3)[3]}",
    ]:
        assert client.get(path).status_code == 404, path
    raw = httpx.URL(f"http://testserver{base}/../../manifest.json")  # httpx drops dot segments
    assert client.get(raw).status_code == 404


def test_submit_flow_and_refusals_change_nothing(served):
    folder, client, (one, two), store = served
    session = client.get(f"/api/s/{one.token}").json()
    training, first, second = session["trials"]
    submit = f"/api/s/{one.token}/submit"
    ok = client.post(submit, json={"trial": "training", "ratings": grades(training)})
    assert ok.status_code == 200 and ok.json() == {"saved": True, "position": 1}
    before = snapshot(folder)
    assert before[0] == []  # the training grades are not kept
    assert [row[1:] for row in before[1]] == [("training", 0)]

    good = grades(first, 40.0)
    key = next(iter(good))
    refusals = [
        (404, {"trial": "t99", "ratings": good}),
        (422, {"trial": first["id"], "ratings": {**good, "feedbeef0000": 10}}),
        (422, {"trial": first["id"], "ratings": dict(list(good.items())[1:])}),
        (422, {"trial": first["id"], "ratings": {**good, key: 101}}),
        (422, {"trial": first["id"], "ratings": {**good, key: -0.5}}),
        (422, {"trial": first["id"], "ratings": {**good, key: "100"}}),
        (422, {"trial": first["id"], "ratings": {**good, key: True}}),
        (422, {"trial": first["id"], "ratings": {c: 99 for c in good}}),  # nothing rated 100
        (409, {"trial": second["id"], "ratings": grades(second)}),  # not the current trial
        (409, {"trial": "training", "ratings": grades(training)}),  # replay of an old submit
        (400, {"trial": first["id"]}),
        (400, {"trial": first["id"], "ratings": [1, 2]}),
    ]
    for status, body in refusals:
        answer = client.post(submit, json=body)
        assert answer.status_code == status, (body, answer.text)
        assert snapshot(folder) == before
    nan = json.dumps({"trial": first["id"], "ratings": good}).replace("40.0", "NaN", 1)
    assert client.post(submit, content=nan).status_code == 422
    assert client.post(submit, content=b"{not json").status_code == 400
    big = json.dumps({"trial": first["id"], "ratings": good, "pad": "x" * MAX_BODY_BYTES})
    assert client.post(submit, content=big).status_code == 413
    assert client.post(submit, content=b"{}", headers={"content-length": "99999"}).status_code in (
        400,
        413,
    )
    assert client.post("/api/s/bogus/submit", json=body).status_code == 404
    assert snapshot(folder) == before

    assert client.post(submit, json={"trial": first["id"], "ratings": good}).status_code == 200
    rows = snapshot(folder)[0]
    assert sorted((r[0], r[1], r[2], r[3]) for r in rows) == sorted(
        (one.name, first["id"], c, v) for c, v in good.items()
    )
    again = client.post(submit, json={"trial": first["id"], "ratings": grades(first, 10.0)})
    assert again.status_code == 409 and snapshot(folder)[0] == rows  # replay: refused
    assert client.get(f"/api/s/{two.token}").json()["position"] == 0  # others untouched


def test_restart_loses_nothing_and_exports_need_the_admin_token(served):
    folder, client, (one, _), store = served
    session = client.get(f"/api/s/{one.token}").json()
    for trial in session["trials"]:
        body = {"trial": trial["id"], "ratings": grades(trial, 33.0)}
        assert client.post(f"/api/s/{one.token}/submit", json=body).status_code == 200
    assert store.journal_mode() == "wal"
    admin = store.admin_token()
    client.close()
    store.close()

    restarted = TestClient(create_app(folder))  # a new process would open the same database
    again = restarted.get(f"/api/s/{one.token}").json()
    assert again["position"] == 3 and again["done"]
    assert restarted.get("/api/admin/results.csv").status_code == 401
    wrong = {"Authorization": f"Bearer {one.token}"}
    assert restarted.get("/api/admin/results.json", headers=wrong).status_code == 401
    right = {"Authorization": f"Bearer {admin}"}
    rows = restarted.get("/api/admin/results.json", headers=right).json()
    assert len(rows) == 2 * 5 and {r["listener"] for r in rows} == {one.name}
    assert sorted(r["score"] for r in rows) == [33.0] * 8 + [100.0] * 2
    assert {r["trial"] for r in rows} == {"t01", "t02"}
    csv = restarted.get("/api/admin/results.csv", headers=right)
    lines = csv.text.splitlines()
    assert lines[0] == "listener,trial,track,stem,condition,kind,name,score,saved"
    assert len(lines) == 11 and csv.headers["content-type"].startswith("text/csv")
    restarted.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_cli_serve_prints_invites_and_binds_localhost(test_folder: Path):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    command = [sys.executable, "-m", "spleeter", "listen", "serve", str(test_folder)]
    process = subprocess.Popen(
        [*command, "--port", str(port), "--listeners", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        lines = [process.stdout.readline() for _ in range(6)]
        links = [line.split()[1] for line in lines[1:4]]
        assert all(link.startswith(f"http://127.0.0.1:{port}/t/") for link in links), lines
        assert len({link.rsplit("/", 1)[1] for link in links}) == 3
        assert lines[4].startswith("Admin token: ")
        for _ in range(100):
            try:
                answer = httpx.get(links[0], timeout=2)
                break
            except httpx.ConnectError:
                import time

                time.sleep(0.05)
        assert answer.status_code == 200
        listening = [line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:]]
        local = [row[1] for row in listening if row[3] == "0A"]  # LISTEN sockets
        assert f"0100007F:{port:04X}" in local and f"00000000:{port:04X}" not in local
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
    assert process.returncode in (0, 130), process.returncode  # Ctrl-C: a clean stop
