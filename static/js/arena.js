// The arena page: send a prompt to two anonymous models, stream both replies at
// once (one socket, generations followed by id: docs/protocol.md), vote, and
// show the names the server reveals in answer to the vote. Before the vote the
// page knows the sides as "Model A" and "Model B" only.

import { renderMarkdown } from "./markdown.js";
import { ReconnectingSocket } from "./socket.js";
import { ACTIVE, GenerationStreams } from "./streams.js";

const arena = document.getElementById("arena");
const turnsEl = document.getElementById("turns");
const template = document.getElementById("turn-template");
const form = document.getElementById("arena-composer");
const input = document.getElementById("arena-input");
const sendButton = document.getElementById("arena-send");
const stopButton = document.getElementById("arena-stop");
const voteEl = document.getElementById("vote");
const revealEl = document.getElementById("reveal");
const notice = document.getElementById("notice");
const csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;

const DEFAULT_PROBLEM = {
  stopped: "Stopped.",
  failed: "This model could not answer.",
  interrupted: "The reply was cut off.",
};

const state = JSON.parse(document.getElementById("battle-state").textContent) || {
  id: "",
  turns: [],
  reveal: null,
};
/** @type {Map<string, {el: HTMLElement, raw: string, status: string}>} by generation id */
const sides = new Map();
let sending = false;

const streams = new GenerationStreams({ resubscribe: () => subscribeAll() });

function addTurn(turn) {
  const el = template.content.firstElementChild.cloneNode(true);
  el.dataset.index = turn.index;
  el.querySelector(".arena-prompt").textContent = turn.content;
  for (const key of ["a", "b"]) {
    const side = turn[key];
    const sideEl = el.querySelector(`.arena-side[data-side="${key}"]`);
    sideEl.dataset.generation = side.generation;
    const entry = { el: sideEl, raw: side.text || "", status: side.status };
    sides.set(side.generation, entry);
    streams.track(side.generation, { final: !ACTIVE.has(side.status) });
    renderSide(entry, side.error);
  }
  turnsEl.append(el);
}

function renderSide(entry, error = null, position = null) {
  entry.el.dataset.status = entry.status;
  entry.el.querySelector(".arena-reply").innerHTML = renderMarkdown(entry.raw);
  let problem = error?.detail || DEFAULT_PROBLEM[entry.status] || "";
  if (entry.status === "queued" && position) problem = `Waiting for a free slot (position ${position})`;
  entry.el.querySelector(".arena-problem").textContent = problem;
}

function subscribeAll() {
  for (const [id, entry] of sides) {
    if (!ACTIVE.has(entry.status)) continue;
    socket.send({ type: "subscribe", generation: id, after_seq: streams.track(id).lastSeq });
  }
}

function onFrame(frame) {
  const entry = typeof frame.generation === "string" ? sides.get(frame.generation) : null;
  if (frame.type === "chunk" && entry) {
    if (!streams.accept(frame.generation, frame.seq)) return;
    entry.raw += frame.text;
    entry.status = "streaming";
    renderSide(entry);
  } else if (frame.type === "done" && entry) {
    if (!streams.accept(frame.generation, frame.seq)) return;
    streams.finish(frame.generation);
    entry.status = frame.status;
    renderSide(entry, frame.error);
    updateControls();
  } else if (frame.type === "queue" && entry) {
    renderSide(entry, null, frame.position);
  } else if (frame.type === "generation") {
    const saved = sides.get(frame.generation.id);
    if (!saved) return;
    streams.finish(frame.generation.id);
    saved.raw = frame.generation.text || saved.raw;
    saved.status = frame.generation.status;
    renderSide(saved, frame.generation.error);
    updateControls();
  } else if (frame.type === "error") {
    showNotice(frame.detail);
  }
}

function stopAll() {
  for (const [id, entry] of sides) {
    if (ACTIVE.has(entry.status)) socket.send({ type: "stop", generation: id });
  }
}

function running() {
  return [...sides.values()].some((entry) => ACTIVE.has(entry.status));
}

function updateControls() {
  const busy = running() || sending;
  const voted = Boolean(state.reveal);
  const turns = turnsEl.children.length;
  const full = turns >= Number(arena.dataset.maxTurns || 0);
  const unavailable = arena.dataset.unavailable === "true" && !turns;
  sendButton.disabled = busy || voted || full || unavailable;
  input.disabled = voted || full || unavailable;
  stopButton.hidden = !running();
  input.placeholder = turns ? "Ask both models again, or vote below…" : "Ask both models…";
  const finished = [...sides.values()].some((entry) => entry.status === "done");
  voteEl.hidden = voted || busy || !finished;
  form.hidden = voted;
}

async function post(url, fields) {
  const body = new URLSearchParams(fields);
  const response = await fetch(url, {
    method: "POST",
    headers: { "X-CSRFToken": csrf },
    body,
    credentials: "same-origin",
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error?.detail || "Something went wrong; try again.");
  return data;
}

async function send(event) {
  event.preventDefault();
  const content = input.value.trim();
  if (!content || sending || running()) return;
  sending = true;
  updateControls();
  hideNotice();
  try {
    const url = state.id ? `/arena/${state.id}/turns/` : arena.dataset.newUrl;
    const data = await post(url, { content });
    if (!state.id) {
      state.id = data.battle;
      window.history.replaceState(null, "", data.url);
    }
    input.value = "";
    addTurn(data.turn);
    for (const key of ["a", "b"]) {
      socket.send({ type: "subscribe", generation: data.turn[key].generation, after_seq: 0 });
    }
  } catch (error) {
    showNotice(error.message);
  } finally {
    sending = false;
    updateControls();
  }
}

async function vote(winner) {
  hideNotice();
  for (const button of voteEl.querySelectorAll("button")) button.disabled = true;
  try {
    const data = await post(`/arena/${state.id}/vote/`, { winner });
    state.reveal = data.reveal;
    showReveal(data.reveal);
  } catch (error) {
    showNotice(error.message);
  } finally {
    for (const button of voteEl.querySelectorAll("button")) button.disabled = false;
    updateControls();
  }
}

function showReveal(reveal) {
  document.getElementById("reveal-vote").textContent = `Your vote: ${reveal.winner_label}.`;
  for (const key of ["a", "b"]) {
    const link = document.getElementById(`reveal-${key}`);
    link.textContent = reveal[key].name;
    link.href = reveal[key].url;
    for (const heading of turnsEl.querySelectorAll(`.arena-side[data-side="${key}"] .arena-side-name`)) {
      heading.textContent = `Model ${key.toUpperCase()}: ${reveal[key].name}`;
    }
  }
  document.getElementById("reveal-counted").textContent = reveal.counted
    ? "Your vote counts toward the leaderboard."
    : `Your vote is kept but does not count: ${reveal.not_counted_reason}`;
  revealEl.hidden = false;
}

function showNotice(text) {
  document.getElementById("notice-text").textContent = text;
  notice.hidden = false;
}

function hideNotice() {
  notice.hidden = true;
}

const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
const socket = new ReconnectingSocket(`${scheme}//${window.location.host}${arena.dataset.wsPath}`, {
  open: () => {
    arena.dataset.connected = "true";
    subscribeAll();
  },
  frame: onFrame,
  close: () => {
    arena.dataset.connected = "false";
  },
});

for (const turn of state.turns) addTurn(turn);
if (state.reveal) showReveal(state.reveal);
form.addEventListener("submit", send);
stopButton.addEventListener("click", stopAll);
input.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    form.requestSubmit();
  }
});
for (const button of voteEl.querySelectorAll("button")) {
  button.addEventListener("click", () => vote(button.dataset.winner));
}
updateControls();
socket.open();
