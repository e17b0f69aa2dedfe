"""End to end in headless Chromium (Debian's package, driven by Playwright) on 127.0.0.1:
open an invite, play, switch, loop, seek, rate every trial, reload to resume, submit; then the
database rows and the report's numbers against the grades given."""

import os
import shutil
import sqlite3
from pathlib import Path

import httpx
import pytest

from spleeter.listen import DATABASE_NAME
from spleeter.listen.manifest import load_manifest
from spleeter.listen.report import build_report
from spleeter.listen.server import create_app, start_in_thread
from spleeter.listen.store import Store

CHROMIUM_ARGS = ["--autoplay-policy=no-user-gesture-required", "--no-sandbox"]
BASE = {"reference": 100, "noisy": 70, "dull": 45, "anchor70": 30, "anchor35": 10}
SECOND = {"reference": 100, "noisy": 80, "dull": 35, "anchor70": 20, "anchor35": 0}


def grade(name: str, trial_id: str) -> int:
    """The browser listener's grade: BASE, plus 4 for the noisy system on the drums item."""
    return BASE[name] + (4 if (name, trial_id) == ("noisy", "t02") else 0)


@pytest.fixture
def browser():
    pytest.importorskip("uvicorn", reason="the 'listen' extra is not installed")
    playwright_api = pytest.importorskip("playwright.sync_api")
    executable = shutil.which("chromium")
    if executable is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


SWITCH_CHECK = """async () => {
  const rate = 44100, ctx = new OfflineAudioContext(2, rate / 2, rate);
  const make = (channel) => {
    const b = ctx.createBuffer(2, rate, rate);
    b.getChannelData(channel).fill(1);
    return b;
  };
  const player = new MushraPlayer(ctx, { a: make(0), b: make(1) });
  player.play("a", 0);
  const t = player.switchTo("b", 0.2);
  clearInterval(player.timer);
  const out = await ctx.startRendering();
  const a = out.getChannelData(0), b = out.getChannelData(1);
  let both = 0, aFade = 0, bFade = 0, firstB = -1, lastA = -1;
  for (let n = 0; n < a.length; n++) {
    if (a[n] > 1e-6 && b[n] > 1e-6) both++;
    if (n > rate * 0.1 && a[n] > 1e-6 && a[n] < 1 - 1e-6) aFade++;
    if (b[n] > 1e-6 && b[n] < 1 - 1e-6) bFade++;
    if (b[n] > 1e-6 && firstB < 0) firstB = n;
    if (a[n] > 1e-6) lastA = n;
  }
  const mid = Math.round((t + 0.0025) * rate);
  return { t, both, aFade, bFade, firstB, lastA, aMid: a[mid], aStart: a[Math.round(t * rate)],
           bEnd: b[Math.round(rate * 0.49)], fadeIn: Array.from(a.slice(0, 230)) };
}"""


def test_listening_test_in_chromium(test_folder: Path, browser, tmp_path: Path):
    manifest = load_manifest(test_folder)
    store = Store(test_folder / DATABASE_NAME)
    one, two = store.ensure_listeners(manifest, 2)
    running = start_in_thread(create_app(test_folder, store))
    shots = os.environ.get("SPLEETER_LISTEN_SCREENSHOTS")
    try:
        page = browser.new_page(viewport={"width": 1000, "height": 760})
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{running.url}/t/{one.token}")
        page.wait_for_selector("#intro:not([hidden])")
        if shots:
            page.screenshot(path=f"{shots}/listening-test-instructions.png")
        page.click("#start")
        page.wait_for_selector('#trial[data-ready="1"]')
        assert page.get_attribute("#trial", "data-trial") == "training"
        assert page.text_content("#trial-title") == "Training trial (grades are not kept)"

        # sample-accurate switching, 5 ms raised-cosine fades, never both heard at once
        check = page.evaluate(SWITCH_CHECK)
        fade = 0.005 * 44100
        assert check["both"] == 0, check
        assert abs(check["aFade"] - fade) <= 2 and abs(check["bFade"] - fade) <= 2
        assert check["firstB"] > check["lastA"]  # fade out, then fade in
        assert check["aMid"] == pytest.approx(0.5, abs=0.03)  # cosine midpoint
        raised = [0.5 - 0.5 * __import__("math").cos(__import__("math").pi * n / fade)
                  for n in range(0, 220, 20)]  # fmt: skip
        assert check["fadeIn"][0:220:20] == pytest.approx(raised, abs=0.02)

        # real playback: the context runs and the playhead moves
        buttons = page.locator("#conditions button.condition")
        sliders = page.locator("#conditions input[type=range]")
        assert buttons.count() == 5 and all(sliders.nth(k).is_disabled() for k in range(5))
        buttons.nth(0).click()
        t0 = page.evaluate("mushra.ctx.currentTime")
        page.wait_for_timeout(400)
        assert page.evaluate("mushra.ctx.state") == "running"
        assert page.evaluate("mushra.ctx.currentTime") > t0 + 0.2
        assert page.evaluate("mushra.player.position()") > 0.1
        assert sliders.nth(0).is_enabled() and sliders.nth(1).is_disabled()
        # keyboard: 2 switches to the second signal, its slider alone enabled
        page.keyboard.press("2")
        page.wait_for_function(
            "mushra.player.current === mushra.session.trials[0].conditions[1].id"
        )
        assert sliders.nth(1).is_enabled() and sliders.nth(0).is_disabled()
        page.keyboard.press("Shift+ArrowUp")
        assert sliders.nth(1).input_value() == "10"
        # seek: a click at 80 % of the time line
        box = page.locator("#timeline").bounding_box()
        page.mouse.click(box["x"] + 0.8 * box["width"], box["y"] + box["height"] / 2)
        page.wait_for_timeout(60)
        assert page.evaluate("mushra.player.position()") == pytest.approx(2.4, abs=0.15)
        # loop: 0.5 s to 1.2 s, the playhead stays inside
        page.fill("#loop-start", "0.5")
        page.fill("#loop-end", "1.2")
        page.locator("#loop-end").dispatch_event("change")
        positions = []
        for _ in range(12):
            page.wait_for_timeout(80)
            positions.append(page.evaluate("mushra.player.position()"))
        assert all(0.5 - 1e-3 <= p <= 1.2 + 1e-3 for p in positions), positions
        assert max(positions) - min(positions) > 0.3  # moving, and wrapping around
        loop = page.evaluate("[mushra.player.loopStart, mushra.player.loopEnd]")
        assert loop == pytest.approx([0.5, 1.2])

        def rate_trial(expected_position: int) -> str:
            trial_id = page.get_attribute("#trial", "data-trial")
            assert trial_id == one.plan[expected_position][0]
            trial = manifest.trial(trial_id)
            assert page.locator("#next").is_disabled()
            for k in range(buttons.count()):
                buttons.nth(k).click()
                condition = trial.condition(buttons.nth(k).get_attribute("data-id"))
                page.wait_for_function(
                    f"() => mushra.player.current === {condition.id!r} && mushra.player.playing"
                )
                sliders.nth(k).fill(str(grade(condition.name, trial_id)))
            page.locator("#next").click()
            page.wait_for_function(
                f"() => document.querySelector('#trial').dataset.trial !== {trial_id!r} || "
                "!document.querySelector('#done').hidden"
            )
            return trial_id

        rate_trial(0)  # training
        page.wait_for_selector('#trial[data-ready="1"]')
        if shots:
            buttons.nth(1).click()
            sliders.nth(1).fill("72")
            page.screenshot(path=f"{shots}/listening-test-trial.png")
            buttons.nth(1).click()
        assert page.text_content("#progress-text") == "0 of 2 trials done"
        rate_trial(1)
        # a reload (or a lost connection) resumes where the server says
        page.reload()
        page.click("#start")
        page.wait_for_selector('#trial[data-ready="1"]')
        assert page.text_content("#progress-text") == "1 of 2 trials done"
        rate_trial(2)
        page.wait_for_selector("#done:not([hidden])")
        assert errors == []
    finally:
        running.stop()

    # the database holds exactly the grades given (training not kept)
    with sqlite3.connect(test_folder / DATABASE_NAME) as db:
        rows = db.execute("SELECT listener, trial, condition, score FROM ratings").fetchall()
        submitted = db.execute("SELECT trial FROM submissions ORDER BY position").fetchall()
    expected = {
        (one.name, t.id, c.id, float(grade(c.name, t.id)))
        for t in manifest.rated_trials
        for c in t.conditions
    }
    assert set(rows) == expected and len(rows) == 10
    assert [s[0] for s in submitted] == [trial_id for trial_id, _ in one.plan]

    # a second listener through the HTTP API, then the report's numbers by hand
    app = create_app(test_folder, store)
    running = start_in_thread(app)
    try:
        session = httpx.get(f"{running.url}/api/s/{two.token}").json()
        for trial in session["trials"]:
            truth = manifest.trial(trial["id"])
            body = {
                "trial": trial["id"],
                "ratings": {c.id: SECOND[c.name] for c in truth.conditions},
            }
            answer = httpx.post(f"{running.url}/api/s/{two.token}/submit", json=body)
            assert answer.status_code == 200
    finally:
        running.stop()
        store.close()
    report = build_report(test_folder, tmp_path / "report")
    assert report.excluded == {}
    vocals = report.statistics["vocals"]["noisy"]  # 70 and 80
    assert (vocals.n, vocals.median, vocals.mean, vocals.q1, vocals.q3) == (2, 75, 75, 72.5, 77.5)
    half = 12.7062047362 * (50**0.5) / 2**0.5  # t(0.975, 1) * s / sqrt(2), s = sqrt(50)
    assert vocals.ci_low == pytest.approx(75 - half) and vocals.ci_high == pytest.approx(75 + half)
    both = report.statistics["all"]["noisy"]  # 70, 74, 80, 80
    assert (both.n, both.median, both.mean) == (4, 77, 76)
    assert both.q1 == pytest.approx(73) and both.q3 == pytest.approx(80)
