"""``spleeter listen serve``: the test page and its API, a Starlette app under uvicorn.

Routes (``<token>`` is a listener's unguessable invite token):

- ``GET /t/<token>``: the page (``static/index.html``); ``GET /static/<file>``: its script and
  style sheet (a fixed list, nothing else of the package);
- ``GET /s/<token>/audio/<trial>/<file>.wav``: a file of the manifest, nothing else (no path is
  ever joined from the request: the request must name a manifest file exactly);
- ``GET /api/s/<token>``: the listener's session: their own order of trials and conditions
  (opaque ids only) and how far they are;
- ``POST /api/s/<token>/submit``: ``{"trial": id, "ratings": {condition id: 0..100}}`` for the
  listener's current trial, committed before the 200 answer;
- ``GET /api/admin/results.csv`` / ``results.json``: every kept grade, with
  ``Authorization: Bearer <admin token>``.

Bad input gets a 4xx and changes nothing: an unknown token (404), a body over
:data:`MAX_BODY_BYTES` (413), malformed JSON (400), a grade outside 0-100, unknown or missing
condition ids, no grade of 100 (422), an old or out-of-order submit (409).
"""

import csv
import io
import json
import math
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .. import SpleeterError
from . import AUDIO_DIRECTORY, DATABASE_NAME
from .manifest import Manifest, load_manifest
from .store import Store, SubmitRefused

MAX_BODY_BYTES: int = 16 * 1024
"""Largest request body accepted (a submit of 12 grades is well under 1 KiB)."""

STATIC_FILES: dict[str, str] = {
    "mushra.js": "text/javascript; charset=utf-8",
    "mushra.css": "text/css; charset=utf-8",
}

SECURITY_HEADERS: dict[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; media-src 'self' blob:; frame-ancestors 'none'"
    ),
    "Cache-Control": "no-store",
}


def static_text(name: str) -> str:
    return resources.files("spleeter.listen").joinpath("static", name).read_text("utf-8")


class BodyTooLarge(Exception):
    pass


async def read_limited(request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, refused as soon as it is over ``limit`` bytes (declared or sent)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise BodyTooLarge()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge()
    return bytes(body)


def _score(value) -> float | None:
    """A grade as a float in 0..100, or None when it is not one (booleans are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) and 0.0 <= value <= 100.0 else None


def create_app(folder: str | Path, store: Store | None = None):
    """The Starlette application serving the test in ``folder``."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.base import BaseHTTPMiddleware
    from starlette.requests import Request
    from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    from .report import RATING_FIELDS, rating_rows

    folder = Path(folder).resolve()
    manifest: Manifest = load_manifest(folder)
    store = store or Store(folder / DATABASE_NAME)
    audio_root = (folder / AUDIO_DIRECTORY).resolve()
    files = {name: (folder / name).resolve() for name in manifest.files()}
    page = static_text("index.html")
    statics = {name: static_text(name) for name in STATIC_FILES}

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    def listener_or_404(request: Request):
        return store.listener(request.path_params["token"])

    def index(request: Request) -> Response:
        return Response("Open your invite link.\n", status_code=404, media_type="text/plain")

    def invite(request: Request) -> Response:
        if listener_or_404(request) is None:
            return Response("Unknown invite link.\n", status_code=404, media_type="text/plain")
        return HTMLResponse(page)

    def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in statics:
            return Response("Not found.\n", status_code=404, media_type="text/plain")
        return Response(statics[name], media_type=STATIC_FILES[name])

    def audio(request: Request) -> Response:
        if listener_or_404(request) is None:
            return error(404, "unknown listener")
        name = f"{AUDIO_DIRECTORY}/{request.path_params['path']}"
        path = files.get(name)
        if path is None or audio_root not in path.parents or not path.is_file():
            return error(404, "not found")
        return FileResponse(path, media_type="audio/wav")

    def session(request: Request) -> Response:
        listener = listener_or_404(request)
        if listener is None:
            return error(404, "unknown listener")
        token = listener.token
        trials = []
        for trial_id, order in listener.plan:
            trial = manifest.trial(trial_id)
            trials.append(
                {
                    "id": trial.id,
                    "training": trial.training,
                    "duration": trial.duration,
                    "reference": f"/s/{token}/{trial.reference}",
                    "conditions": [
                        {"id": c, "url": f"/s/{token}/{trial.condition(c).file}"} for c in order
                    ],
                }
            )
        return JSONResponse(
            {
                "listener": listener.name,
                "attribute": manifest.attribute,
                "sample_rate": manifest.sample_rate,
                "position": listener.position,
                "total": len(trials),
                "done": listener.done,
                "trials": trials,
            }
        )

    async def submit(request: Request) -> Response:
        listener = listener_or_404(request)
        if listener is None:
            return error(404, "unknown listener")
        try:
            body = await read_limited(request)
        except BodyTooLarge:
            return error(413, f"request body over {MAX_BODY_BYTES} bytes")
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return error(400, "the body is not JSON")
        if not isinstance(data, dict) or set(data) != {"trial", "ratings"}:
            return error(400, 'expected {"trial": id, "ratings": {condition id: grade}}')
        trial_id, ratings = data["trial"], data["ratings"]
        trial = manifest.trial(trial_id) if isinstance(trial_id, str) else None
        if trial is None:
            return error(404, "unknown trial")
        if not isinstance(ratings, dict):
            return error(400, "ratings must be an object")
        unknown = [c for c in ratings if trial.condition(c) is None]
        if unknown:
            return error(422, f"unknown condition id(s) {sorted(unknown)[:12]}")
        scores = {c: _score(v) for c, v in ratings.items()}
        if any(v is None for v in scores.values()):
            return error(422, "every grade is a number from 0 to 100")
        if len(scores) != len(trial.conditions):
            return error(422, "every condition of the trial needs a grade")
        if max(scores.values()) != 100.0:
            return error(422, "at least one condition must be rated 100")
        from starlette.concurrency import run_in_threadpool

        try:
            position = await run_in_threadpool(
                store.submit, listener.token, trial_id, scores, not trial.training
            )
        except SubmitRefused as refused:
            return error(refused.status, str(refused))
        return JSONResponse({"saved": True, "position": position})

    def admin(request: Request) -> Response:
        expected = f"Bearer {store.admin_token()}"
        given = request.headers.get("authorization", "")
        if not secrets.compare_digest(given.encode(), expected.encode()):
            return error(401, "admin token required (Authorization: Bearer <token>)")
        rows = rating_rows(manifest, store.ratings())
        if request.path_params["format"] == "json":
            return JSONResponse(rows)
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(RATING_FIELDS), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return Response(text.getvalue(), media_type="text/csv; charset=utf-8")

    class Headers(BaseHTTPMiddleware):
        async def dispatch(self, request, call_next):
            response = await call_next(request)
            for key, value in SECURITY_HEADERS.items():
                response.headers.setdefault(key, value)
            return response

    routes = [
        Route("/", index),
        Route("/t/{token}", invite),
        Route("/static/{name}", static),
        Route("/s/{token}/audio/{path:path}", audio),
        Route("/api/s/{token}", session),
        Route("/api/s/{token}/submit", submit, methods=["POST"]),
        Route("/api/admin/results.{format:str}", admin),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(Headers)])
    app.state.store = store
    app.state.manifest = manifest
    return app


@dataclass
class Running:
    """A uvicorn server running in a thread (tests, screenshots); ``stop()`` ends it."""

    url: str
    server: object
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_in_thread(app, host: str = "127.0.0.1", port: int = 0) -> Running:
    """Serve ``app`` with uvicorn in a background thread on a socket bound here (``port`` 0:
    any free port); returns once it accepts connections."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    return Running(f"http://{host}:{sock.getsockname()[1]}", server, thread)


def serve(folder: str | Path, host: str = "127.0.0.1", port: int = 8000, listeners: int = 4):
    """Serve the test in ``folder`` until interrupted, after printing one invite per listener."""
    import uvicorn

    folder = Path(folder)
    manifest = load_manifest(folder)
    store = Store(folder / DATABASE_NAME)
    app = create_app(folder, store)
    if listeners < 1:
        raise SpleeterError("--listeners must be at least 1")
    shown = host if ":" not in host else f"[{host}]"
    base = f"http://{shown}:{port}"
    print(f"Serving {folder} ({len(manifest.rated_trials)} trials + training) on {base}")
    for listener in store.ensure_listeners(manifest, listeners):
        state = "done" if listener.done else f"{listener.position}/{len(listener.plan)}"
        print(f"  {listener.name}: {base}/t/{listener.token}  ({state})")
    print(f"Admin token: {store.admin_token()}")
    print(f"  curl -H 'Authorization: Bearer <admin token>' {base}/api/admin/results.csv")
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"WARNING: listening on {host}: reachable from other machines (plain HTTP)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
