// MUSHRA page of `spleeter listen serve` (BS.1534-3). Written for this project; MIT licence.
"use strict";

const FADE = 0.005; // 5 ms raised-cosine fades on every switch, start, stop and loop boundary
const LOOKAHEAD = 0.02; // seconds between a request and its scheduled effect
const MIN_LOOP = 0.5; // shortest loop region (BS.1534-3)
const CURVE_POINTS = 64;

function raisedCosine(from, to) {
  const curve = new Float32Array(CURVE_POINTS);
  for (let k = 0; k < CURVE_POINTS; k++) {
    const w = 0.5 - 0.5 * Math.cos((Math.PI * k) / (CURVE_POINTS - 1));
    curve[k] = from + (to - from) * w;
  }
  return curve;
}

// Plays several sample-aligned buffers: all run together, each through its own gain; only the
// selected one is heard. Switching fades the old one out (5 ms), then the new one in (5 ms):
// never both at once, never a cross-fade. Playback loops over [loopStart, loopEnd).
class Player {
  constructor(ctx, buffers, destination) {
    this.ctx = ctx;
    this.buffers = buffers; // {id: AudioBuffer}, same length
    this.duration = Math.min(...Object.values(buffers).map((b) => b.duration));
    this.gains = {};
    for (const id of Object.keys(buffers)) {
      const gain = ctx.createGain();
      gain.gain.value = 0;
      gain.connect(destination || ctx.destination);
      this.gains[id] = gain;
    }
    this.current = null;
    this.playing = false;
    this.segments = []; // {start, from, to, end, sources}
    this.busy = 0; // no gain automation may start before this context time
    this.loopStart = 0;
    this.loopEnd = this.duration;
    this.resumeAt = 0; // position when stopped
    this.timer = null;
    this.onchange = null;
  }

  fade(id, from, to, at) {
    this.gains[id].gain.setValueCurveAtTime(raisedCosine(from, to), at, FADE);
  }

  // Schedule a segment playing [from, to) of every buffer from context time `start`.
  schedule(start, from, to) {
    const sources = [];
    for (const [id, buffer] of Object.entries(this.buffers)) {
      const source = this.ctx.createBufferSource();
      source.buffer = buffer;
      source.connect(this.gains[id]);
      source.start(start, from, to - from);
      sources.push(source);
    }
    const segment = { start, from, to, end: start + (to - from), sources };
    this.segments.push(segment);
    if (this.current !== null) this.hear(this.current, segment, start);
    return segment;
  }

  // Gain events making `id` heard in `segment` from `at` on: fade in, then out at its end.
  hear(id, segment, at) {
    this.fade(id, 0, 1, at);
    this.fade(id, 1, 0, segment.end - FADE);
    this.busy = Math.max(this.busy, at + FADE);
  }

  segmentAt(time) {
    return this.segments.find((s) => s.start <= time && time < s.end) || null;
  }

  position(time) {
    const t = time === undefined ? this.ctx.currentTime : time;
    if (!this.playing) return this.resumeAt;
    const segment = this.segmentAt(t) || this.segments[this.segments.length - 1];
    if (!segment) return this.resumeAt;
    return Math.min(segment.to, segment.from + Math.max(0, t - segment.start));
  }

  // Start playing `id` (from the stopped position), or switch to it when already playing.
  play(id, at) {
    if (this.playing) return this.switchTo(id, at);
    const start = Math.max(at === undefined ? this.ctx.currentTime + LOOKAHEAD : at, this.busy);
    let from = this.resumeAt;
    if (from < this.loopStart || from > this.loopEnd - 4 * FADE) from = this.loopStart;
    this.current = id;
    this.playing = true;
    this.segments = [];
    this.schedule(start, from, this.loopEnd);
    this.startTimer();
    this.changed();
    return start;
  }

  switchTo(id, at) {
    if (!this.playing) return this.play(id, at);
    if (id === this.current) return null;
    let t = Math.max(at === undefined ? this.ctx.currentTime + LOOKAHEAD : at, this.busy);
    let segment = this.segmentAt(t);
    if (segment && t < segment.start + FADE) t = segment.start + FADE;
    const old = this.current;
    this.current = id;
    if (segment && t + 3 * FADE <= segment.end) {
      // mid-segment: old fades out over [t, t + 5 ms], the new one in over the next 5 ms
      this.gains[old].gain.cancelScheduledValues(t);
      this.fade(old, 1, 0, t);
      this.hear(id, segment, t + FADE);
    } else {
      // too close to the loop boundary: the old one fades out there as planned anyway, the
      // new one is heard from the next segment on
      segment = this.segments.find((s) => s.start >= t - 1e-9) || null;
      if (!segment) {
        const last = this.segments[this.segments.length - 1];
        this.gains[old].gain.cancelScheduledValues(last.end);
        this.changed();
        return last.end; // scheduled by the timer with the new condition
      }
      this.gains[old].gain.cancelScheduledValues(segment.start);
      this.hear(id, segment, segment.start);
      t = segment.start - FADE;
    }
    for (const later of this.segments.filter((s) => s.start > t + FADE)) {
      this.gains[old].gain.cancelScheduledValues(later.start);
      this.hear(id, later, later.start);
    }
    this.busy = Math.max(this.busy, t + 2 * FADE);
    this.changed();
    return t;
  }

  stop(at) {
    if (!this.playing) return null;
    let t = Math.max(at === undefined ? this.ctx.currentTime + LOOKAHEAD : at, this.busy);
    const segment = this.segmentAt(t);
    if (segment && t < segment.start + FADE) t = segment.start + FADE;
    let end;
    if (segment && t + 2 * FADE <= segment.end) {
      this.gains[this.current].gain.cancelScheduledValues(t);
      this.fade(this.current, 1, 0, t);
      end = t + FADE;
    } else {
      end = segment ? segment.end : t; // the boundary fade-out is already scheduled
      this.gains[this.current].gain.cancelScheduledValues(end);
    }
    this.resumeAt = this.position(Math.min(end, t));
    for (const s of this.segments) for (const source of s.sources) source.stop(Math.max(end, s.start));
    this.busy = Math.max(this.busy, end);
    this.segments = [];
    this.playing = false;
    clearInterval(this.timer);
    this.changed();
    return end;
  }

  seek(position) {
    const clamped = Math.max(0, Math.min(position, this.duration - 4 * FADE));
    if (!this.playing) {
      this.resumeAt = clamped;
      this.changed();
      return;
    }
    const id = this.current;
    const end = this.stop();
    this.resumeAt = clamped;
    this.play(id, end);
  }

  setLoop(start, end) {
    start = Math.max(0, Math.min(start, this.duration - MIN_LOOP));
    end = Math.min(this.duration, Math.max(end, start + MIN_LOOP));
    this.loopStart = start;
    this.loopEnd = end;
    if (this.playing) {
      const p = this.position();
      this.seek(p >= start && p < end - 0.05 ? p : start);
    } else if (this.resumeAt < start || this.resumeAt >= end) {
      this.resumeAt = start;
    }
    this.changed();
  }

  startTimer() {
    clearInterval(this.timer);
    this.timer = setInterval(() => this.tick(), 25);
  }

  // Keep one segment queued ahead: each loop starts when the previous one ends.
  tick() {
    if (!this.playing) return;
    const now = this.ctx.currentTime;
    this.segments = this.segments.filter((s) => s.end > now - 0.5);
    const last = this.segments[this.segments.length - 1];
    if (last && last.end - now < 0.3) this.schedule(last.end, this.loopStart, this.loopEnd);
  }

  changed() {
    if (this.onchange) this.onchange();
  }
}

// ---------------------------------------------------------------------------------------------

const $ = (id) => document.getElementById(id);
const token = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
const api = `/api/s/${encodeURIComponent(token)}`;
const state = { session: null, index: 0, ctx: null, player: null, ratings: {}, heard: new Set() };
window.mushra = state;
window.MushraPlayer = Player;

function status(text, error) {
  $("status").textContent = text || "";
  $("status").classList.toggle("error", !!error);
}

function show(section) {
  for (const id of ["intro", "trial", "done"]) $(id).hidden = id !== section;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function fetchSession() {
  for (let attempt = 0; ; attempt++) {
    try {
      const response = await fetch(api, { cache: "no-store" });
      if (response.status === 404) throw new Error("This invite link is not valid.");
      if (!response.ok) throw new Error(`server answered ${response.status}`);
      return await response.json();
    } catch (error) {
      if (error.message.startsWith("This invite")) throw error;
      status("Connection lost; retrying...", true);
      await sleep(Math.min(5000, 500 * 2 ** attempt));
    }
  }
}

function draftKey(trial) {
  return `mushra:${token}:${trial.id}`;
}

function saveDraft(trial) {
  const draft = { ratings: state.ratings, heard: [...state.heard] };
  try {
    localStorage.setItem(draftKey(trial), JSON.stringify(draft));
  } catch (_) {
    /* storage full or disabled: the draft only helps a reload */
  }
}

function loadDraft(trial) {
  try {
    return JSON.parse(localStorage.getItem(draftKey(trial)) || "null");
  } catch (_) {
    return null;
  }
}

function updateProgress() {
  const s = state.session;
  $("progress-box").hidden = false;
  $("progress").max = s.total;
  $("progress").value = Math.min(state.index, s.total);
  const rated = s.trials.filter((t) => !t.training).length;
  const done = s.trials.slice(0, state.index).filter((t) => !t.training).length;
  $("progress-text").textContent = `${done} of ${rated} trials done`;
}

async function decode(url) {
  for (let attempt = 0; ; attempt++) {
    try {
      const response = await fetch(url);
      if (!response.ok) throw new Error(`${url}: ${response.status}`);
      return await state.ctx.decodeAudioData(await response.arrayBuffer());
    } catch (error) {
      if (attempt >= 5) throw error;
      status("Loading audio failed; retrying...", true);
      await sleep(500 * 2 ** attempt);
    }
  }
}

async function loadTrial() {
  const s = state.session;
  if (state.index >= s.total) {
    if (state.player) {
      state.player.onchange = null;
      state.player.stop();
      state.player = null;
    }
    show("done");
    updateProgress();
    $("progress-text").textContent = "All trials done";
    return;
  }
  const trial = s.trials[state.index];
  if (state.player) state.player.stop();
  $("trial").dataset.ready = "0";
  show("trial");
  updateProgress();
  const rated = s.trials.filter((t) => !t.training);
  const number = rated.indexOf(trial) + 1;
  $("trial-title").textContent = trial.training
    ? "Training trial (grades are not kept)"
    : `Trial ${number} of ${rated.length}`;
  status("Loading audio...");
  const buffers = { reference: await decode(trial.reference) };
  for (const condition of trial.conditions) buffers[condition.id] = await decode(condition.url);
  status("");
  const player = new Player(state.ctx, buffers);
  state.player = player;
  const draft = loadDraft(trial) || { ratings: {}, heard: [] };
  state.ratings = {};
  for (const c of trial.conditions) state.ratings[c.id] = draft.ratings[c.id] ?? 0;
  state.heard = new Set(draft.heard.filter((id) => id in state.ratings));
  buildConditions(trial);
  $("loop-start").max = player.duration.toFixed(2);
  $("loop-end").max = player.duration.toFixed(2);
  player.onchange = render;
  player.setLoop(0, player.duration);
  $("trial").dataset.ready = "1";
  $("trial").dataset.trial = trial.id;
  render();
}

function buildConditions(trial) {
  const box = $("conditions");
  box.replaceChildren();
  trial.conditions.forEach((condition, k) => {
    const column = document.createElement("div");
    column.className = "column";
    const value = document.createElement("span");
    value.className = "value";
    const slider = document.createElement("input");
    slider.type = "range";
    slider.min = "0";
    slider.max = "100";
    slider.step = "1";
    slider.value = String(state.ratings[condition.id]);
    slider.dataset.id = condition.id;
    slider.setAttribute("aria-label", `grade of signal ${k + 1}`);
    slider.addEventListener("input", () => setRating(condition.id, Number(slider.value)));
    const button = document.createElement("button");
    button.type = "button";
    button.className = "condition";
    button.dataset.id = condition.id;
    button.textContent = String(k + 1);
    button.title = k < 10 ? `key ${(k + 1) % 10}` : "";
    button.addEventListener("click", () => select(condition.id));
    column.append(value, slider, button);
    box.append(column);
  });
}

function setRating(id, value) {
  const player = state.player;
  if (!player || !player.playing || player.current !== id) return render();
  state.ratings[id] = Math.max(0, Math.min(100, Math.round(value)));
  saveDraft(state.session.trials[state.index]);
  render();
}

function select(id) {
  const player = state.player;
  if (!player) return;
  if (state.ctx.state !== "running") state.ctx.resume();
  player.play(id);
  if (id !== "reference") {
    state.heard.add(id);
    saveDraft(state.session.trials[state.index]);
  }
  render();
}

function missing() {
  const trial = state.session.trials[state.index];
  if (!trial) return "All trials are done.";
  const unheard = trial.conditions.filter((c) => !state.heard.has(c.id)).length;
  if (unheard) return `Listen to every signal (${unheard} not heard yet).`;
  if (!Object.values(state.ratings).some((v) => v === 100))
    return "Rate at least one signal 100 (the one identical to the reference).";
  return "";
}

function render() {
  const player = state.player;
  if (!player) return;
  for (const slider of document.querySelectorAll("#conditions input[type=range]")) {
    const id = slider.dataset.id;
    slider.disabled = !(player.playing && player.current === id);
    slider.value = String(state.ratings[id]);
    slider.previousElementSibling.textContent = state.heard.has(id) ? slider.value : "-";
  }
  for (const button of document.querySelectorAll("button.condition")) {
    const id = button.dataset.id || "reference";
    button.classList.toggle("playing", player.playing && player.current === id);
    button.classList.toggle("heard", state.heard.has(id));
  }
  $("play").textContent = player.playing ? "Stop" : "Play";
  const hint = missing();
  $("hint").textContent = hint;
  $("next").disabled = !!hint || state.submitting;
  const d = player.duration;
  $("loop-region").style.left = `${(100 * player.loopStart) / d}%`;
  $("loop-region").style.width = `${(100 * (player.loopEnd - player.loopStart)) / d}%`;
  if (document.activeElement !== $("loop-start")) $("loop-start").value = player.loopStart.toFixed(2);
  if (document.activeElement !== $("loop-end")) $("loop-end").value = player.loopEnd.toFixed(2);
}

function animate() {
  const player = state.player;
  if (player) {
    const p = player.position();
    $("playhead").style.left = `${(100 * p) / player.duration}%`;
    $("clock").textContent = `${p.toFixed(2)} s`;
  }
  requestAnimationFrame(animate);
}

async function submit() {
  if (missing() || state.submitting) return;
  const trial = state.session.trials[state.index];
  state.submitting = true;
  render();
  const body = JSON.stringify({ trial: trial.id, ratings: state.ratings });
  try {
    for (let attempt = 0; ; attempt++) {
      let response;
      try {
        response = await fetch(`${api}/submit`, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body,
        });
      } catch (_) {
        // lost connection: the grades may or may not be saved; the server's position says
        status("Connection lost; retrying...", true);
        await sleep(Math.min(5000, 500 * 2 ** attempt));
        const session = await fetchSession();
        if (session.position > state.index) {
          state.session = session;
          break;
        }
        continue;
      }
      if (response.ok) {
        const answer = await response.json();
        state.session.position = answer.position;
        break;
      }
      if (response.status === 409) {
        state.session = await fetchSession(); // already saved (another tab, a replay)
        break;
      }
      const detail = await response.json().catch(() => ({}));
      status(`Not saved: ${detail.error || response.status}`, true);
      return;
    }
    try {
      localStorage.removeItem(draftKey(trial));
    } catch (_) {
      /* nothing to clean */
    }
    status("Saved.");
    state.index = state.session.position;
    await loadTrial();
  } finally {
    state.submitting = false;
    render();
  }
}

function timelinePosition(event) {
  const box = $("timeline").getBoundingClientRect();
  const x = Math.max(0, Math.min(1, (event.clientX - box.left) / box.width));
  return x * state.player.duration;
}

function setupTimeline() {
  let down = null;
  $("timeline").addEventListener("pointerdown", (event) => {
    if (!state.player) return;
    down = timelinePosition(event);
    $("timeline").setPointerCapture(event.pointerId);
  });
  $("timeline").addEventListener("pointerup", (event) => {
    if (down === null || !state.player) return;
    const up = timelinePosition(event);
    if (Math.abs(up - down) >= MIN_LOOP) state.player.setLoop(Math.min(up, down), Math.max(up, down));
    else state.player.seek(up);
    down = null;
  });
  const apply = () => state.player.setLoop(Number($("loop-start").value), Number($("loop-end").value));
  $("loop-start").addEventListener("change", apply);
  $("loop-end").addEventListener("change", apply);
  $("loop-reset").addEventListener("click", () => state.player.setLoop(0, state.player.duration));
}

function togglePlay() {
  const player = state.player;
  if (!player) return;
  if (player.playing) player.stop();
  else select(player.current || "reference");
}

function onKey(event) {
  if ($("trial").hidden || !state.player || event.target.type === "number") return;
  const trial = state.session.trials[state.index];
  const player = state.player;
  const key = event.key;
  let handled = true;
  if (key === " ") togglePlay();
  else if (key === "r" || key === "R") select("reference");
  else if (/^[0-9]$/.test(key)) {
    const k = key === "0" ? 9 : Number(key) - 1;
    if (k < trial.conditions.length) select(trial.conditions[k].id);
  } else if (key === "ArrowUp" || key === "ArrowDown") {
    const step = (key === "ArrowUp" ? 1 : -1) * (event.shiftKey ? 10 : 1);
    if (player.current in state.ratings) setRating(player.current, state.ratings[player.current] + step);
  } else if (key === "ArrowLeft" || key === "ArrowRight") {
    player.seek(player.position() + (key === "ArrowRight" ? 1 : -1));
  } else if (key === "n" || key === "N" || key === "Enter") submit();
  else handled = false;
  if (handled) event.preventDefault();
}

async function main() {
  status("Loading...");
  try {
    state.session = await fetchSession();
  } catch (error) {
    status(error.message, true);
    return;
  }
  status("");
  state.index = state.session.position;
  $("attribute").textContent = state.session.attribute;
  if (state.session.done) {
    show("done");
    return;
  }
  show("intro");
  $("start").addEventListener("click", async () => {
    state.ctx = new AudioContext({ sampleRate: state.session.sample_rate, latencyHint: "interactive" });
    await state.ctx.resume();
    $("start").disabled = true;
    try {
      await loadTrial();
    } catch (error) {
      status(`Cannot load the trial: ${error.message}`, true);
    }
  });
  $("play").addEventListener("click", togglePlay);
  $("reference").addEventListener("click", () => select("reference"));
  $("next").addEventListener("click", submit);
  document.addEventListener("keydown", onKey);
  setupTimeline();
  requestAnimationFrame(animate);
}

main();
