// One conversation: the composer and the websocket that streams replies
// (docs/protocol.md). The server sends `message`, `chunk`, `done` and `error`
// frames; this page sends `subscribe`, `send`, `stop` and `regenerate`.
import { autoGrow, submitOnEnter } from "./composer.js";
import { ReconnectingSocket } from "./socket.js";
import { ACTIVE, FINAL, Thread } from "./thread.js";

const ERROR_TEXT = { busy: "Wait for the current reply to finish, or stop it." };
const OFFLINE_TEXT = "Not connected: try again in a moment.";

const chat = document.getElementById("chat");
const conversationId = chat.dataset.conversation;
const input = document.getElementById("composer-input");
const sendButton = document.getElementById("send-button");
const stopButton = document.getElementById("stop-button");
const notice = document.getElementById("notice");
const noticeText = document.getElementById("notice-text");
const connectionStatus = document.getElementById("connection-status");

const thread = new Thread({
  list: document.getElementById("messages"),
  scroller: document.getElementById("chat-scroll"),
  scrollDown: document.getElementById("scroll-down"),
  template: document.getElementById("message-template"),
});
/** Sends not yet echoed by the server, by client_id; resent with the same id after a drop. */
const pending = new Map();
let regenerating = null;
let failedAttempts = 0;

// ---- controls and notices -------------------------------------------------

function isBusy() {
  return Boolean(thread.activeReply()) || pending.size > 0 || regenerating !== null;
}

function refreshControls() {
  const active = thread.activeReply();
  const busy = isBusy();
  chat.dataset.busy = String(busy);
  sendButton.disabled = busy;
  stopButton.hidden = !active;
  stopButton.disabled = Boolean(active?.stopRequested);
  for (const button of thread.list.querySelectorAll(".regenerate-button")) button.disabled = busy;
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

function setConnected(connected, { reconnecting = true } = {}) {
  chat.dataset.connected = String(connected);
  connectionStatus.hidden = connected || !reconnecting;
}

// ---- frames from the server -----------------------------------------------

/** Whether frame number `seq` of a reply is the next one: no token twice, none missing. */
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
 * Start a reply over from its first chunk. The server applies `after_seq`
 * to its own latest reply; a gap means that was not the reply this page meant.
 */
function resync(entry) {
  entry.raw = "";
  entry.lastSeq = 0;
  entry.resyncing = true;
  thread.scheduleRender(entry);
  socket.send({ type: "subscribe", conversation: conversationId, after_seq: 0 });
}

function statusRank(status) {
  return ACTIVE.has(status) ? (status === "queued" ? 0 : 1) : 2;
}

function onMessage(data) {
  if (!data || typeof data.id !== "string" || data.conversation !== conversationId) return;
  if (data.role !== "user" && data.role !== "assistant") return;
  let entry = thread.get(data.id);
  if (!entry && data.client_id && pending.has(data.client_id)) {
    // The echo of this page's own send: the optimistic message becomes the saved one.
    entry = pending.get(data.client_id).entry;
    pending.delete(data.client_id);
    thread.adopt(entry, data.id);
  }
  if (!entry) {
    entry = thread.create({ ...data, content: "" });
    thread.place(entry, data.parent);
  }
  if (data.role === "assistant") regenerating = null;
  entry.parent = data.parent ?? entry.parent;
  // Frames can cross (a chunk may beat the reply's `message`): never go back.
  if (statusRank(data.status) >= statusRank(entry.status)) {
    entry.status = data.status;
    // Once a reply has ended its saved text is the truth; while it streams
    // the chunks carry the text and the saved content is still empty.
    if (entry.role === "user" || FINAL.has(data.status)) {
      entry.raw = data.content || "";
      thread.renderText(entry);
    }
    if (data.stats) entry.stats = data.stats;
    entry.error = data.error || null;
    thread.renderStatus(entry);
  }
  refreshControls();
  thread.followBottom();
}

function onChunk(frame) {
  if (typeof frame.message !== "string" || !Number.isInteger(frame.seq)) return;
  const entry = thread.get(frame.message) ?? thread.unknownReply(frame.message);
  if (!accept(entry, frame.seq)) return;
  entry.raw += typeof frame.text === "string" ? frame.text : "";
  if (entry.status === "queued") {
    entry.status = "streaming";
    thread.renderStatus(entry);
  }
  thread.scheduleRender(entry);
}

function onDone(frame) {
  if (typeof frame.message !== "string" || !Number.isInteger(frame.seq)) return;
  const entry = thread.get(frame.message) ?? thread.unknownReply(frame.message);
  if (!accept(entry, frame.seq)) return;
  entry.status = FINAL.has(frame.status) ? frame.status : "failed";
  entry.stats = frame.stats || null;
  entry.error = frame.error || null;
  entry.stopRequested = false;
  thread.renderText(entry);
  thread.renderStatus(entry);
  refreshControls();
  thread.followBottom();
}

function onError(frame) {
  showNotice(ERROR_TEXT[frame.code] || frame.detail || "Something went wrong.", frame.code || "");
  // Errors carry no request id: the frame answers whatever this page is waiting for.
  if (regenerating !== null) regenerating = null;
  else rollBackSends();
  const active = thread.activeReply();
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

const HANDLERS = { message: (frame) => onMessage(frame.message), chunk: onChunk, done: onDone, error: onError };

// ---- the socket -----------------------------------------------------------

function subscribe() {
  // Resume the latest reply after the last frame seen. If a send may have
  // been taken while the socket was down, the server's latest reply may be
  // one this page has never seen: replay from the start.
  const latest = thread.latestReply();
  const afterSeq = latest && pending.size === 0 ? latest.lastSeq : 0;
  if (latest && afterSeq === 0 && !FINAL.has(latest.status)) {
    latest.raw = "";
    latest.lastSeq = 0;
    thread.scheduleRender(latest);
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

/**
 * A refused handshake looks like any network error to the page: after a few
 * failed attempts, ask the page itself whether the session is still valid.
 */
async function checkSignedIn() {
  try {
    const response = await fetch(window.location.href, { method: "HEAD", redirect: "manual" });
    if (response.type === "opaqueredirect") {
      showNotice("You are signed out. Reload the page to sign in again.", "unauthenticated");
    }
  } catch {
    // Offline: the reconnect loop keeps trying.
  }
}

const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
const socket = new ReconnectingSocket(`${scheme}//${window.location.host}${chat.dataset.wsPath}`, {
  open() {
    failedAttempts = 0;
    setConnected(true);
    for (const entry of thread.entries.values()) entry.resyncing = false;
    subscribe();
    flushSends();
  },
  frame(frame) {
    HANDLERS[frame.type]?.(frame);
  },
  close(event) {
    setConnected(false);
    for (const item of pending.values()) item.sent = false;
    regenerating = null;
    failedAttempts += 1;
    if (event.code === 4401) {
      connectionStatus.hidden = true;
      showNotice("You are signed out. Reload the page to sign in again.", "unauthenticated");
    } else if (failedAttempts === 3) {
      checkSignedIn();
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
  if (!content || isBusy()) return;
  hideNotice();
  const clientId = newClientId();
  const entry = thread.create({ role: "user", status: "done", content, client_id: clientId });
  entry.el.dataset.pending = "true";
  thread.list.append(entry.el);
  thread.renderText(entry);
  pending.set(clientId, { content, entry, sent: false });
  flushSends();
  input.value = "";
  fitInput();
  bumpConversation();
  refreshControls();
  thread.jumpToBottom();
}

function stop() {
  const active = thread.activeReply();
  if (!active) return;
  if (!socket.send({ type: "stop", message: active.id })) {
    showNotice(OFFLINE_TEXT, "offline");
    return;
  }
  active.stopRequested = true;
  refreshControls();
}

function regenerate(entry) {
  if (!entry || isBusy()) return;
  if (!socket.send({ type: "regenerate", message: entry.id })) {
    showNotice(OFFLINE_TEXT, "offline");
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

thread.list.addEventListener("click", (event) => {
  const button = event.target.closest("button");
  const entry = thread.get(button?.closest(".message")?.dataset.id);
  if (!entry) return;
  if (button.classList.contains("regenerate-button")) regenerate(entry);
  else if (button.classList.contains("copy-button")) copy(entry, button);
});
document.getElementById("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  send();
});
document.getElementById("notice-dismiss").addEventListener("click", hideNotice);
stopButton.addEventListener("click", stop);
submitOnEnter(input, send);
const fitInput = autoGrow(input);

// ---- start ----------------------------------------------------------------

thread.load(JSON.parse(document.getElementById("messages-data").textContent));
refreshControls();
thread.jumpToBottom();
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
