// One conversation: the thread, the composer, and the websocket that streams
// replies. The protocol is described in docs/protocol.md; in short the
// server sends `message`, `chunk`, `done` and `error` frames, and this page
// sends `subscribe`, `send`, `stop` and `regenerate`.
import { autoGrow, submitOnEnter } from "./composer.js";
import { highlightCode, renderMarkdown } from "./markdown.js";
import { ReconnectingSocket } from "./socket.js";

const ACTIVE = new Set(["queued", "streaming"]);
const FINAL = new Set(["done", "stopped", "failed", "interrupted"]);
const BADGES = { stopped: "Stopped", failed: "Failed", interrupted: "Interrupted" };
const DEFAULT_DETAILS = {
  stopped: "The reply was stopped.",
  failed: "The model could not answer.",
  interrupted: "The reply was cut off.",
};
const ERROR_TEXT = { busy: "Wait for the current reply to finish, or stop it." };
const STICK_DISTANCE = 48; // px from the bottom that still counts as "at the bottom"

const chat = document.getElementById("chat");
const conversationId = chat.dataset.conversation;
const list = document.getElementById("messages");
const scroller = document.getElementById("chat-scroll");
const scrollDown = document.getElementById("scroll-down");
const form = document.getElementById("composer");
const input = document.getElementById("composer-input");
const sendButton = document.getElementById("send-button");
const stopButton = document.getElementById("stop-button");
const notice = document.getElementById("notice");
const noticeText = document.getElementById("notice-text");
const connectionStatus = document.getElementById("connection-status");
const template = document.getElementById("message-template");
const canCopy = Boolean(navigator.clipboard && window.isSecureContext);

/**
 * What this page knows of each message, by id.
 * @typedef {{id: string, role: string, parent: ?string, status: string, raw: string,
 *   lastSeq: number, resyncing: boolean, stats: ?object, error: ?object,
 *   el: HTMLElement, content: HTMLElement, stopRequested?: boolean}} Entry
 * @type {Map<string, Entry>}
 */
const entries = new Map();
/** Sends not yet echoed by the server, by client_id; resent with the same id after a drop. */
const pending = new Map();
let regenerating = null;
let stickToBottom = true;

// ---- the thread -----------------------------------------------------------

function statusRank(status) {
  if (status === "queued") return 0;
  if (status === "streaming") return 1;
  return 2;
}

function newEntry(el, data) {
  return {
    id: data.id || "",
    role: data.role,
    parent: data.parent ?? null,
    status: data.status,
    raw: data.content || "",
    lastSeq: 0,
    resyncing: false,
    stats: data.stats || null,
    error: data.error || null,
    el,
    content: el.querySelector(".message-content"),
  };
}

function createEntry(data) {
  const el = template.content.firstElementChild.cloneNode(true);
  el.dataset.id = data.id || "";
  el.dataset.role = data.role;
  el.dataset.status = data.status;
  if (data.client_id) el.dataset.clientId = data.client_id;
  if (data.role === "assistant") el.querySelector(".message-content").classList.add("markdown-body");
  el.querySelector(".copy-button").hidden = !canCopy;
  const entry = newEntry(el, data);
  if (entry.id) entries.set(entry.id, entry);
  return entry;
}

/** Put a new message after its parent; whatever followed the parent was another branch. */
function place(entry, parentId) {
  const parent = parentId ? entries.get(parentId) : null;
  if (parent) {
    let next = parent.el.nextElementSibling;
    while (next) {
      const following = next.nextElementSibling;
      if (next.dataset.id && next !== entry.el) {
        entries.delete(next.dataset.id);
        next.remove();
      }
      next = following;
    }
  }
  list.append(entry.el);
}

function unknownReply(id) {
  const entry = createEntry({ id, role: "assistant", status: "queued", content: "" });
  place(entry, null);
  return entry;
}

function latestReply() {
  const replies = list.querySelectorAll('.message[data-role="assistant"][data-id]:not([data-id=""])');
  const last = replies[replies.length - 1];
  return last ? entries.get(last.dataset.id) : null;
}

function activeReply() {
  for (const entry of entries.values()) {
    if (entry.role === "assistant" && ACTIVE.has(entry.status)) return entry;
  }
  return null;
}

// ---- rendering ------------------------------------------------------------

const dirty = new Set();
let frameRequested = false;

/** Re-render a streaming reply at most once per animation frame. */
function scheduleRender(entry) {
  dirty.add(entry);
  if (frameRequested) return;
  frameRequested = true;
  requestAnimationFrame(() => {
    frameRequested = false;
    for (const item of dirty) renderText(item);
    dirty.clear();
    followBottom();
  });
}

function renderText(entry) {
  dirty.delete(entry);
  if (entry.role !== "assistant") {
    entry.content.textContent = entry.raw;
    return;
  }
  entry.content.innerHTML = renderMarkdown(entry.raw);
  // Highlighting once at the end spares the CPU while tokens arrive.
  if (FINAL.has(entry.status)) highlightCode(entry.content);
}

function renderStatus(entry) {
  const el = entry.el;
  el.dataset.status = entry.status;
  if (entry.role !== "assistant") return;
  el.querySelector(".status-badge").textContent = BADGES[entry.status] || "";
  el.querySelector(".error-detail").textContent =
    entry.error?.detail || DEFAULT_DETAILS[entry.status] || "";
  el.querySelector(".message-stats").replaceChildren(...statsParts(entry.stats));
}

function statsParts(stats) {
  if (!stats) return [];
  const parts = [];
  if (stats.generated_tokens) parts.push(`${stats.generated_tokens} tokens`);
  if (stats.tokens_per_second) parts.push(`${Number(stats.tokens_per_second).toFixed(1)} tok/s`);
  if (stats.time_to_first_token_ms != null) {
    parts.push(`${Math.round(stats.time_to_first_token_ms)} ms to first token`);
  }
  if (stats.finish_reason === "length") parts.push("hit the length limit");
  return parts.map((text) => {
    const span = document.createElement("span");
    span.textContent = text;
    return span;
  });
}

// ---- scrolling ------------------------------------------------------------

function followBottom() {
  if (stickToBottom) scroller.scrollTop = scroller.scrollHeight;
}

function jumpToBottom() {
  stickToBottom = true;
  scrollDown.hidden = true;
  scroller.scrollTop = scroller.scrollHeight;
}

scroller.addEventListener("scroll", () => {
  const distance = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight;
  stickToBottom = distance < STICK_DISTANCE;
  scrollDown.hidden = stickToBottom;
}, { passive: true });
scrollDown.addEventListener("click", jumpToBottom);

// ---- controls and notices -------------------------------------------------

function refreshControls() {
  const active = activeReply();
  const busy = Boolean(active) || pending.size > 0 || regenerating !== null;
  chat.dataset.busy = String(busy);
  sendButton.disabled = busy;
  stopButton.hidden = !active;
  stopButton.disabled = Boolean(active?.stopRequested);
  for (const button of list.querySelectorAll(".regenerate-button")) button.disabled = busy;
}

function showNotice(text, code = "") {
  noticeText.textContent = text;
  notice.dataset.code = code;
  notice.hidden = false;
}

function hideNotice() {
  notice.hidden = true;
  noticeText.textContent = "";
  delete notice.dataset.code;
}

document.getElementById("notice-dismiss").addEventListener("click", hideNotice);

function setConnected(connected, { reconnecting = true } = {}) {
  chat.dataset.connected = String(connected);
  connectionStatus.hidden = connected || !reconnecting;
}

// ---- frames from the server -----------------------------------------------

/** Accept frame number `seq` of a reply, or say why not; keeps no token twice and none missing. */
function accept(entry, seq) {
  if (seq <= entry.lastSeq) return false;
  if (FINAL.has(entry.status)) {
    // The full text came with the page or a `message` frame: a replay adds nothing.
    entry.lastSeq = seq;
    return false;
  }
  if (seq !== entry.lastSeq + 1) {
    if (!entry.resyncing) resync(entry);
    return false;
  }
  entry.resyncing = false;
  entry.lastSeq = seq;
  return true;
}

/**
 * Start a reply over from its first chunk. The server numbers `after_seq`
 * against its latest reply; a gap means that was not the one this page meant.
 */
function resync(entry) {
  entry.raw = "";
  entry.lastSeq = 0;
  entry.resyncing = true;
  scheduleRender(entry);
  socket.send({ type: "subscribe", conversation: conversationId, after_seq: 0 });
}

function onMessage(data) {
  if (!data || typeof data.id !== "string" || data.conversation !== conversationId) return;
  if (data.role !== "user" && data.role !== "assistant") return;
  let entry = entries.get(data.id);
  if (!entry && data.client_id && pending.has(data.client_id)) {
    // The echo of this page's own send: the optimistic message becomes the saved one.
    entry = pending.get(data.client_id).entry;
    pending.delete(data.client_id);
    entry.id = data.id;
    entry.el.dataset.id = data.id;
    delete entry.el.dataset.pending;
    entries.set(data.id, entry);
  }
  if (!entry) {
    entry = createEntry({ ...data, content: "" });
    place(entry, data.parent);
  }
  if (data.role === "assistant" && regenerating !== null) regenerating = null;
  if (data.parent !== undefined) entry.parent = data.parent;
  if (statusRank(data.status) >= statusRank(entry.status)) {
    entry.status = data.status;
    // The saved text is the truth once a reply has ended; while it streams
    // the chunks carry the text and the saved content is still empty.
    if (entry.role === "user" || FINAL.has(data.status)) {
      entry.raw = data.content || "";
      renderText(entry);
    }
    if (data.stats) entry.stats = data.stats;
    entry.error = data.error || null;
    renderStatus(entry);
  }
  refreshControls();
  followBottom();
}

function onChunk(frame) {
  if (typeof frame.message !== "string" || !Number.isInteger(frame.seq)) return;
  const entry = entries.get(frame.message) ?? unknownReply(frame.message);
  if (!accept(entry, frame.seq)) return;
  entry.raw += typeof frame.text === "string" ? frame.text : "";
  if (entry.status === "queued") {
    entry.status = "streaming";
    renderStatus(entry);
  }
  scheduleRender(entry);
}

function onDone(frame) {
  if (typeof frame.message !== "string" || !Number.isInteger(frame.seq)) return;
  const entry = entries.get(frame.message) ?? unknownReply(frame.message);
  if (!accept(entry, frame.seq)) return;
  entry.status = FINAL.has(frame.status) ? frame.status : "failed";
  entry.stats = frame.stats || null;
  entry.error = frame.error || null;
  entry.stopRequested = false;
  renderText(entry);
  renderStatus(entry);
  refreshControls();
  followBottom();
}

function onError(frame) {
  const text = ERROR_TEXT[frame.code] || frame.detail || "Something went wrong.";
  showNotice(text, frame.code || "");
  // Errors carry no request id: the frame answers whatever this page is waiting for.
  if (regenerating !== null) {
    regenerating = null;
  } else {
    rollBackSends();
  }
  const active = activeReply();
  if (active) active.stopRequested = false;
  refreshControls();
}

/** A refused send: take the optimistic message away and give the text back. */
function rollBackSends() {
  for (const [clientId, item] of pending) {
    if (!item.sent) continue;
    pending.delete(clientId);
    item.entry.el.remove();
    if (!input.value.trim()) {
      input.value = item.content;
      fitInput();
    }
  }
}

function onFrame(frame) {
  switch (frame.type) {
    case "message": onMessage(frame.message); break;
    case "chunk": onChunk(frame); break;
    case "done": onDone(frame); break;
    case "error": onError(frame); break;
    default: break;
  }
}

// ---- the socket -----------------------------------------------------------

function subscribe() {
  // Resume the latest reply after the last frame seen. A send the server may
  // have taken while the socket was down means its latest reply could be one
  // this page has never seen: then replay from the start.
  const latest = latestReply();
  const afterSeq = latest && pending.size === 0 ? latest.lastSeq : 0;
  if (latest && afterSeq === 0 && !FINAL.has(latest.status)) {
    latest.raw = "";
    latest.lastSeq = 0;
    scheduleRender(latest);
  }
  socket.send({ type: "subscribe", conversation: conversationId, after_seq: afterSeq });
}

function flushSends() {
  for (const [clientId, item] of pending) {
    if (item.sent) continue;
    item.sent = socket.send({
      type: "send", conversation: conversationId, content: item.content, client_id: clientId,
    });
  }
}

const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
const socket = new ReconnectingSocket(`${scheme}//${window.location.host}${chat.dataset.wsPath}`, {
  open() {
    setConnected(true);
    for (const entry of entries.values()) entry.resyncing = false;
    subscribe();
    flushSends();
  },
  frame: onFrame,
  close(event) {
    setConnected(false);
    for (const item of pending.values()) item.sent = false;
    if (regenerating !== null) regenerating = null;
    if (event.code === 4401) {
      connectionStatus.hidden = true;
      showNotice("You are signed out. Reload the page to sign in again.", "unauthenticated");
    }
    refreshControls();
  },
});

// ---- what the user does ---------------------------------------------------

function newClientId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  // Plain-HTTP pages have no randomUUID: build a version 4 UUID by hand.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function send() {
  const content = input.value.trim();
  if (!content || chat.dataset.busy === "true") return;
  hideNotice();
  const clientId = newClientId();
  const entry = createEntry({ role: "user", status: "done", content, client_id: clientId });
  entry.el.dataset.pending = "true";
  list.append(entry.el);
  renderText(entry);
  pending.set(clientId, { content, entry, sent: false });
  flushSends();
  input.value = "";
  fitInput();
  bumpConversation();
  refreshControls();
  jumpToBottom();
}

function stop() {
  const active = activeReply();
  if (!active) return;
  if (socket.send({ type: "stop", message: active.id })) {
    active.stopRequested = true;
    refreshControls();
  } else {
    showNotice("Not connected: try again in a moment.", "offline");
  }
}

function regenerate(entry) {
  if (!entry || chat.dataset.busy === "true") return;
  if (!socket.send({ type: "regenerate", message: entry.id })) {
    showNotice("Not connected: try again in a moment.", "offline");
    return;
  }
  hideNotice();
  regenerating = entry.id;
  refreshControls();
}

async function copy(entry, button) {
  try {
    await navigator.clipboard.writeText(entry.raw);
    button.classList.add("copied");
    setTimeout(() => button.classList.remove("copied"), 1500);
  } catch {
    showNotice("Could not copy to the clipboard.", "copy");
  }
}

/** Move this conversation to the top of the sidebar: it is now the newest. */
function bumpConversation() {
  const item = document.querySelector(`#conversation-list li[data-id="${CSS.escape(conversationId)}"]`);
  item?.parentElement.prepend(item);
}

list.addEventListener("click", (event) => {
  const button = event.target.closest("button");
  const message = button?.closest(".message");
  if (!message) return;
  const entry = entries.get(message.dataset.id);
  if (button.classList.contains("regenerate-button")) regenerate(entry);
  else if (button.classList.contains("copy-button") && entry) copy(entry, button);
});

form.addEventListener("submit", (event) => {
  event.preventDefault();
  send();
});
stopButton.addEventListener("click", stop);
submitOnEnter(input, send);
const fitInput = autoGrow(input);

// ---- start ----------------------------------------------------------------

function loadInitialMessages() {
  const data = JSON.parse(document.getElementById("messages-data").textContent);
  for (const item of data) {
    const el = list.querySelector(`.message[data-id="${CSS.escape(item.id)}"]`);
    if (!el) continue;
    const entry = newEntry(el, item);
    entries.set(entry.id, entry);
    el.querySelector(".copy-button").hidden = !canCopy;
    if (entry.role === "assistant" && ACTIVE.has(entry.status)) {
      // The server replays an unfinished reply from its first chunk.
      entry.raw = "";
      entry.content.replaceChildren();
    } else if (entry.role === "assistant") {
      highlightCode(entry.content);
    }
  }
}

loadInitialMessages();
refreshControls();
jumpToBottom();
setConnected(false, { reconnecting: false });
socket.open();

window.addEventListener("online", () => socket.wake());
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") socket.wake();
});
// Close on the way out so the page can enter the back/forward cache; reopen on return.
window.addEventListener("pagehide", () => socket.close());
window.addEventListener("pageshow", (event) => {
  if (event.persisted) socket.open();
});
