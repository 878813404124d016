// A compare session: one prompt to every column, the replies streaming side by side
// over the chat socket (docs/protocol.md). Each column's reply is a generation the page
// subscribes to by id; streams.js orders its chunks and reply.js shows its state, as on
// the chat page. Turns are sent with a POST; stops go over the socket.
import { autoGrow, submitOnEnter } from "./composer.js";
import { addCodeCopyButtons, highlightCode, renderMarkdown } from "./markdown.js";
import { hideNotice, showNotice } from "./notice.js";
import { renderReplyState } from "./reply.js";
import { ReconnectingSocket } from "./socket.js";
import { ACTIVE, FINAL, GenerationStreams } from "./streams.js";

const OFFLINE_TEXT = "Not connected: try again in a moment.";

const root = document.getElementById("compare");
const data = JSON.parse(document.getElementById("compare-data").textContent);
const input = document.getElementById("composer-input");
const sendButton = document.getElementById("send-button");
const stopButton = document.getElementById("stop-button");
const connectionStatus = document.getElementById("connection-status");
const userTemplate = document.getElementById("compare-user-template");
const replyTemplate = document.getElementById("compare-reply-template");
const csrfToken = document.querySelector("#composer input[name=csrfmiddlewaretoken]").value;
const refused = root.dataset.refused === "true";

/** Columns in order: {id, el, thread, stop, continueButton, replies: [reply]} */
const columns = data.columns.map((column) => {
  const el = root.querySelector(`.compare-column[data-column="${CSS.escape(column.id)}"]`);
  return {
    id: column.id,
    refusal: column.refusal,
    el,
    thread: el.querySelector(".compare-thread"),
    scroller: el.querySelector(".compare-scroll"),
    stop: el.querySelector(".column-stop"),
    continueButton: el.querySelector(".column-continue"),
    replies: [],
  };
});
/** Replies by generation id: {id, column, el, content, raw, status, stats, error, position} */
const replies = new Map();
const streams = new GenerationStreams({ resubscribe: () => subscribeAll() });
let sending = false;

// ---- rendering ------------------------------------------------------------

function addTurn(turn) {
  columns.forEach((column, index) => {
    const user = userTemplate.content.firstElementChild.cloneNode(true);
    user.querySelector(".message-content").textContent = turn.content; // never HTML
    column.thread.append(user);
    const summary = turn.replies[index];
    if (summary) addReply(column, summary);
  });
}

function addReply(column, summary) {
  const el = replyTemplate.content.firstElementChild.cloneNode(true);
  el.dataset.generation = summary.id;
  const final = FINAL.has(summary.status);
  const reply = {
    id: summary.id,
    column,
    el,
    content: el.querySelector(".message-content"),
    // A reply still running is replayed from its first chunk; a finished one is saved.
    raw: final ? summary.text || "" : "",
    status: summary.status,
    stats: summary.stats || null,
    error: summary.error || null,
    trimmed: summary.trimmed_messages || 0,
    position: null,
    stopRequested: false,
  };
  column.thread.append(el);
  column.replies.push(reply);
  replies.set(reply.id, reply);
  streams.track(reply.id, { final });
  renderText(reply);
  renderState(reply);
}

function renderText(reply) {
  reply.content.innerHTML = renderMarkdown(reply.raw);
  if (FINAL.has(reply.status)) {
    highlightCode(reply.content);
    if (navigator.clipboard && window.isSecureContext) addCodeCopyButtons(reply.content);
  }
}

const dirty = new Set();
function scheduleRender(reply) {
  if (dirty.has(reply)) return;
  dirty.add(reply);
  if (dirty.size > 1) return;
  requestAnimationFrame(() => {
    for (const item of dirty) {
      renderText(item);
      follow(item.column);
    }
    dirty.clear();
  });
}

function renderState(reply) {
  renderReplyState(reply.el, reply);
  refreshControls();
}

function follow(column) {
  column.scroller.scrollTop = column.scroller.scrollHeight;
}

function lastReply(column) {
  return column.replies[column.replies.length - 1];
}

function isRunning(reply) {
  return Boolean(reply) && ACTIVE.has(reply.status);
}

function refreshControls() {
  const running = columns.filter((c) => isRunning(lastReply(c)));
  for (const column of columns) {
    const last = lastReply(column);
    column.el.dataset.active = String(isRunning(last));
    column.stop.hidden = !isRunning(last);
    column.stop.disabled = Boolean(last?.stopRequested);
    column.continueButton.disabled = isRunning(last) || Boolean(column.refusal);
  }
  root.dataset.busy = String(running.length > 0 || sending);
  sendButton.disabled = running.length > 0 || sending || refused;
  stopButton.hidden = running.length === 0;
}

// ---- frames from the server -----------------------------------------------

function onChunk(frame) {
  if (typeof frame.generation !== "string" || !Number.isInteger(frame.seq)) return;
  if (!streams.has(frame.generation)) return; // another page's turn: shown on reload
  if (!streams.accept(frame.generation, frame.seq)) return;
  const reply = replies.get(frame.generation);
  reply.raw += typeof frame.text === "string" ? frame.text : "";
  if (reply.status === "queued") {
    reply.status = "streaming";
    renderState(reply);
  }
  scheduleRender(reply);
}

function onDone(frame) {
  if (typeof frame.generation !== "string" || !Number.isInteger(frame.seq)) return;
  if (!streams.has(frame.generation) || !streams.accept(frame.generation, frame.seq)) return;
  streams.finish(frame.generation);
  const reply = replies.get(frame.generation);
  finish(reply, frame);
}

function finish(reply, { status, stats, error }) {
  reply.status = FINAL.has(status) ? status : "failed";
  reply.stats = stats || null;
  reply.error = error || null;
  reply.stopRequested = false;
  renderText(reply);
  renderState(reply);
  follow(reply.column);
}

/** The saved state of a generation whose token log has expired. */
function onGeneration(frame) {
  const saved = frame.generation;
  const reply = saved && replies.get(saved.id);
  if (!reply || streams.items.get(reply.id)?.final || !FINAL.has(saved.status)) return;
  streams.finish(reply.id);
  reply.raw = saved.text || "";
  finish(reply, saved);
}

function onQueue(frame) {
  const reply = replies.get(frame.generation);
  if (!reply || reply.status !== "queued" || !Number.isInteger(frame.position)) return;
  reply.position = frame.position;
  renderState(reply);
}

function onError(frame) {
  showNotice(frame.detail || "Something went wrong.", frame.code || "");
  for (const reply of replies.values()) reply.stopRequested = false;
  refreshControls();
}

const HANDLERS = { chunk: onChunk, done: onDone, generation: onGeneration, queue: onQueue, error: onError };

// ---- the socket -----------------------------------------------------------

function subscribe(id) {
  const item = streams.items.get(id);
  if (!item || item.final) return;
  socket.send({ type: "subscribe", generation: id, after_seq: item.lastSeq });
}

function subscribeAll() {
  for (const id of replies.keys()) subscribe(id);
}

const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
const socket = new ReconnectingSocket(`${scheme}//${window.location.host}${root.dataset.wsPath}`, {
  open() {
    root.dataset.connected = "true";
    connectionStatus.hidden = true;
    subscribeAll();
  },
  frame(frame) {
    HANDLERS[frame.type]?.(frame);
  },
  close(event) {
    root.dataset.connected = "false";
    if (event.code === 4401) {
      showNotice("You are signed out. Reload the page to sign in again.", "unauthenticated");
    } else {
      connectionStatus.hidden = false;
    }
  },
});

// ---- what the user does ---------------------------------------------------

async function send() {
  const content = input.value.trim();
  if (!content || sending || refused || columns.some((c) => isRunning(lastReply(c)))) return;
  hideNotice();
  sending = true;
  refreshControls();
  let answer;
  try {
    const response = await fetch(root.dataset.sendUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken, Accept: "application/json" },
      body: JSON.stringify({ content }),
    });
    answer = await response.json().catch(() => ({}));
    if (!response.ok) {
      showNotice(answer.detail || "The turn was not sent.", answer.code || "");
      return;
    }
  } catch {
    showNotice(OFFLINE_TEXT, "offline");
    return;
  } finally {
    sending = false;
    refreshControls();
  }
  input.value = "";
  fitInput();
  addTurn(answer.turn);
  for (const summary of answer.turn.replies) subscribe(summary.id);
  for (const column of columns) follow(column);
}

function stopReplies(list) {
  for (const reply of list) {
    if (!isRunning(reply)) continue;
    if (!socket.send({ type: "stop", generation: reply.id })) {
      showNotice(OFFLINE_TEXT, "offline");
      return;
    }
    reply.stopRequested = true;
  }
  refreshControls();
}

function stopAll() {
  stopReplies(columns.map(lastReply));
}

for (const column of columns) {
  column.stop.addEventListener("click", () => stopReplies([lastReply(column)]));
}
stopButton.addEventListener("click", stopAll);
document.getElementById("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  send();
});
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && !event.isComposing) stopAll();
});
submitOnEnter(input, send);
const fitInput = autoGrow(input);

// ---- start ----------------------------------------------------------------

for (const turn of data.turns) addTurn(turn);
for (const column of columns) follow(column);
refreshControls();
socket.open();
window.addEventListener("online", () => socket.wake());
window.addEventListener("pagehide", () => socket.close());
window.addEventListener("pageshow", (event) => {
  if (event.persisted) socket.open();
});
