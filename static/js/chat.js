// One conversation: the composer and the websocket that streams replies
// (docs/protocol.md). The server sends `message`, `chunk`, `done`, `error`, `queue`
// and `access` frames; this page sends `subscribe`, `send`, `edit`, `stop`,
// `regenerate` and `select` (the branch shown, remembered for the next visit).
// Chunks are keyed by generation: streams.js decides which ones to show.
import { autoGrow, submitOnEnter } from "./composer.js";
import { hideNotice, noticeCode, noticeMessage, showNotice } from "./notice.js";
import { renderDetails } from "./reply.js";
import { ReconnectingSocket } from "./socket.js";
import { ACTIVE, FINAL, GenerationStreams } from "./streams.js";
import { Thread } from "./thread.js";

const ERROR_TEXT = { busy: "Wait for the current reply to finish, or stop it." };
const OFFLINE_TEXT = "Not connected: try again in a moment.";
const CLOSE_TOO_MANY_SOCKETS = 4429;

const chat = document.getElementById("chat");
const conversationId = chat.dataset.conversation;
const input = document.getElementById("composer-input");
const sendButton = document.getElementById("send-button");
const stopButton = document.getElementById("stop-button");
const connectionStatus = document.getElementById("connection-status");

const thread = new Thread({
  list: document.getElementById("messages"),
  scroller: document.getElementById("chat-scroll"),
  scrollDown: document.getElementById("scroll-down"),
  template: document.getElementById("message-template"),
  earlier: document.getElementById("messages-earlier"),
});
const streams = new GenerationStreams({ resubscribe: () => subscribe() });
/** Sends not yet echoed by the server, by client_id; resent with the same id after a drop. */
const pending = new Map();
let regenerating = null; // a regenerate or an edit sent, until its reply's `message` frame
/** The message being edited: {entry, clientId} once its edit is sent. */
let editing = null;
/** The branch switched to while the socket was down: told to the server on reconnect. */
let unsentSelect = null;
let failedAttempts = 0;
/** Why this user may not send to the conversation's model any more, if they may not. */
let refusal = chat.dataset.refused === "true" ? noticeMessage() : "";

// ---- controls and notices -------------------------------------------------

/** A new message follows the last one shown: not while that is a reply still running. */
function isBusy() {
  const leaf = thread.leaf();
  const leafRunning = leaf?.role === "assistant" && ACTIVE.has(leaf.status);
  return leafRunning || pending.size > 0 || regenerating !== null;
}

function refreshControls() {
  const active = thread.activeReplies().pop();
  const busy = isBusy();
  chat.dataset.busy = String(busy);
  chat.dataset.refused = String(Boolean(refusal));
  sendButton.disabled = busy || Boolean(refusal);
  input.disabled = Boolean(refusal);
  stopButton.hidden = !active;
  stopButton.disabled = Boolean(active?.stopRequested);
  for (const button of thread.list.querySelectorAll(".regenerate-button")) {
    button.disabled = busy || Boolean(refusal);
  }
  // An edit branches off earlier: only a send or edit still unanswered holds it back.
  for (const button of thread.list.querySelectorAll(".edit-send")) {
    button.disabled = isWaiting() || Boolean(refusal);
  }
}

function isWaiting() {
  return pending.size > 0 || regenerating !== null;
}

function setConnected(connected, { reconnecting = true } = {}) {
  chat.dataset.connected = String(connected);
  connectionStatus.hidden = connected || !reconnecting;
}

// ---- frames from the server -----------------------------------------------

// Queue positions by generation id, as last told (a `queue` frame may beat its reply's
// `message` frame).
const positions = new Map();
const MAX_POSITIONS = 64;

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
    entry.createdAt = data.created_at || "";
  }
  if (!entry) {
    entry = thread.create({ ...data, content: "" });
    thread.place(entry, data.parent);
  }
  if (editing?.clientId && data.client_id === editing.clientId) closeEdit();
  if (data.role === "assistant") {
    regenerating = null;
    streams.track(entry.generation, { createdAt: data.created_at });
    if (positions.has(entry.generation)) entry.position = positions.get(entry.generation);
  }
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
    if (FINAL.has(data.status) && entry.generation) streams.finish(entry.generation);
    if (data.generation) {
      entry.stats = data.generation.stats || null;
      entry.error = data.generation.error || null;
    }
    thread.renderStatus(entry);
  }
  refreshControls();
  thread.followBottom();
}

function onChunk(frame) {
  if (typeof frame.generation !== "string" || !Number.isInteger(frame.seq)) return;
  if (!streams.accept(frame.generation, frame.seq)) return;
  const entry = thread.reply(frame.generation);
  if (!entry) return;
  entry.raw += typeof frame.text === "string" ? frame.text : "";
  if (entry.status === "queued") {
    entry.status = "streaming";
    thread.renderStatus(entry);
  }
  if (thread.isShown(entry)) thread.scheduleRender(entry);
}

function onDone(frame) {
  if (typeof frame.generation !== "string" || !Number.isInteger(frame.seq)) return;
  if (!streams.accept(frame.generation, frame.seq)) return;
  streams.finish(frame.generation);
  const entry = thread.reply(frame.generation);
  if (!entry) return;
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
  if (frame.code === "forbidden") {
    onAccess({ conversation: conversationId, detail: frame.detail });
    return;
  }
  showNotice(ERROR_TEXT[frame.code] || frame.detail || "Something went wrong.", frame.code || "");
  // Too many sockets: this one closes next; its sends stay pending for the next connection.
  if (frame.code === "too_many_sockets") return;
  // Errors carry no request id: the frame answers whatever this page is waiting for.
  if (regenerating !== null) regenerating = null;
  else rollBackSends();
  for (const active of thread.activeReplies()) active.stopRequested = false;
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

/** Where a reply waiting for the model stands in its queue. */
function onQueue(frame) {
  if (typeof frame.generation !== "string" || !Number.isInteger(frame.position)) return;
  positions.delete(frame.generation);
  positions.set(frame.generation, frame.position);
  if (positions.size > MAX_POSITIONS) positions.delete(positions.keys().next().value);
  const entry = thread.reply(frame.generation);
  if (!entry || entry.status !== "queued") return;
  entry.position = frame.position;
  thread.renderStatus(entry);
}

/**
 * The model is closed to this user now (a revocation, an expiry, a new licence, staff
 * changed its policy or took it out of service), or open again (`allowed`).
 */
function onAccess(frame) {
  if (frame.conversation !== conversationId) return;
  if (frame.allowed === true) {
    refusal = "";
    if (noticeCode() === "access") hideNotice();
    refreshControls();
    return;
  }
  refusal = frame.detail || "You no longer have access to this model.";
  rollBackSends();
  showNotice(refusal, "access");
  refreshControls();
}

const HANDLERS = {
  message: (frame) => onMessage(frame.message),
  chunk: onChunk,
  done: onDone,
  error: onError,
  queue: onQueue,
  access: onAccess,
};

// ---- the socket -----------------------------------------------------------

/**
 * Resume every reply still streaming here after the last chunk shown; the
 * server adds whatever is newer than the newest reply this page has (a send
 * taken while the socket was down, another tab's message).
 */
function subscribe() {
  socket.send({ type: "subscribe", conversation: conversationId, ...streams.subscription() });
}

function flushSends() {
  for (const [clientId, item] of pending) {
    if (item.sent) continue;
    item.sent = socket.send({
      type: "send", conversation: conversationId, content: item.content, client_id: clientId,
      parent: item.parent,
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
    if (noticeCode() === "access-changed" || noticeCode() === "too_many_sockets") hideNotice();
    setConnected(true);
    subscribe();
    flushSends();
    if (unsentSelect) sendSelect(unsentSelect);
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
    } else if (event.code === CLOSE_TOO_MANY_SOCKETS) {
      // The error frame before the close said why; the socket tries again slowly.
      connectionStatus.hidden = true;
      if (noticeCode() !== "too_many_sockets") {
        showNotice("Too many chat tabs are open: close one. This tab tries again every 30 s.", "too_many_sockets");
      }
    } else if (event.code === 4403) {
      // Access changed (rights, groups, password, account): the reconnect decides again.
      showNotice("Your access changed; reconnecting.", "access-changed");
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
  if (!content || isBusy() || refusal) return;
  hideNotice();
  const clientId = newClientId();
  const parent = thread.leaf()?.id ?? null;
  const entry = thread.create({ role: "user", status: "done", content, client_id: clientId });
  entry.el.dataset.pending = "true";
  thread.list.append(entry.el);
  thread.renderText(entry);
  pending.set(clientId, { content, entry, parent, sent: false });
  flushSends();
  input.value = "";
  fitInput();
  bumpConversation();
  refreshControls();
  thread.jumpToBottom();
}

function stop() {
  const active = thread.activeReplies();
  if (!active.length) return;
  for (const entry of active) {
    if (!socket.send({ type: "stop", generation: entry.generation })) {
      showNotice(OFFLINE_TEXT, "offline");
      return;
    }
    entry.stopRequested = true;
  }
  refreshControls();
}

function regenerate(entry, { sameSettings = false } = {}) {
  if (!entry || isBusy() || refusal) return;
  if (!socket.send({ type: "regenerate", message: entry.id, same_settings: sameSettings })) {
    showNotice(OFFLINE_TEXT, "offline");
    return;
  }
  hideNotice();
  regenerating = entry.id;
  refreshControls();
}

// ---- branches and edits ---------------------------------------------------

/** Show the sibling `step` places from `entry` (-1: previous, 1: next) and remember it. */
function switchBranch(entry, step) {
  const siblings = thread.siblings(entry);
  const target = siblings[siblings.indexOf(entry) + step];
  if (!target) return;
  closeEdit();
  const leaf = thread.showBranch(target);
  if (leaf?.id) sendSelect(leaf.id);
  refreshControls();
}

function sendSelect(leafId) {
  unsentSelect = leafId;
  if (socket.send({ type: "select", conversation: conversationId, leaf: leafId })) unsentSelect = null;
}

function openEdit(entry) {
  if (!entry || entry.role !== "user" || !entry.id) return;
  closeEdit();
  editing = { entry, clientId: null };
  const form = entry.el.querySelector(".message-edit");
  const field = form.querySelector(".message-edit-input");
  field.value = entry.raw;
  form.hidden = false;
  entry.el.dataset.editing = "true";
  field.focus();
  field.setSelectionRange(field.value.length, field.value.length);
}

function closeEdit() {
  if (!editing) return;
  const { entry } = editing;
  entry.el.querySelector(".message-edit").hidden = true;
  delete entry.el.dataset.editing;
  editing = null;
}

/** Send the edited text: the server makes it a new branch beside the old message. */
function sendEdit() {
  if (!editing || isWaiting()) return;
  const content = editing.entry.el.querySelector(".message-edit-input").value.trim();
  if (!content) return;
  const clientId = newClientId();
  if (!socket.send({ type: "edit", message: editing.entry.id, content, client_id: clientId })) {
    showNotice(OFFLINE_TEXT, "offline");
    return;
  }
  hideNotice();
  editing.clientId = clientId;
  regenerating = editing.entry.id;
  refreshControls();
}

/** ↑ in the empty composer edits the last message you sent on this branch. */
function editLastMessage() {
  const mine = [...thread.list.querySelectorAll('.message[data-role="user"]')].pop();
  openEdit(thread.get(mine?.dataset.id));
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

/** Open or close a reply's details: model, revision, endpoint, parameters, input. */
async function toggleDetails(entry, button) {
  const section = entry.el.querySelector(".message-details");
  const opening = section.hidden;
  section.hidden = !opening;
  button.setAttribute("aria-expanded", String(opening));
  if (!opening || !entry.generation) return;
  try {
    const response = await fetch(`${chat.dataset.generationsPath}${entry.generation}/`, {
      headers: { Accept: "application/json" },
    });
    if (!response.ok) throw new Error(String(response.status));
    renderDetails(section, await response.json());
  } catch {
    showNotice("Could not load the reply's details.", "details");
  }
}

thread.list.addEventListener("click", (event) => {
  const button = event.target.closest("button");
  const entry = thread.get(button?.closest(".message")?.dataset.id);
  if (!entry) return;
  if (button.classList.contains("regenerate-button")) regenerate(entry);
  else if (button.classList.contains("branch-prev")) switchBranch(entry, -1);
  else if (button.classList.contains("branch-next")) switchBranch(entry, 1);
  else if (button.classList.contains("edit-button")) openEdit(entry);
  else if (button.classList.contains("edit-cancel")) closeEdit();
  else if (button.classList.contains("regenerate-same-button")) regenerate(entry, { sameSettings: true });
  else if (button.classList.contains("details-button")) toggleDetails(entry, button);
  else if (button.classList.contains("copy-button")) copy(entry, button);
});
thread.list.addEventListener("submit", (event) => {
  if (!event.target.classList.contains("message-edit")) return;
  event.preventDefault();
  sendEdit();
});
thread.list.addEventListener("keydown", (event) => {
  if (!event.target.classList.contains("message-edit-input")) return;
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
    event.preventDefault();
    sendEdit();
  }
});
input.addEventListener("keydown", (event) => {
  if (event.key === "ArrowUp" && !input.value && !event.isComposing) {
    event.preventDefault();
    editLastMessage();
  }
});
document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape" || event.isComposing) return;
  if (editing) closeEdit();
  else stop();
});
document.getElementById("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  send();
});
stopButton.addEventListener("click", stop);
submitOnEnter(input, send);
const fitInput = autoGrow(input);

// ---- start ----------------------------------------------------------------

thread.load(JSON.parse(document.getElementById("messages-data").textContent));
for (const entry of thread.replies.values()) {
  streams.track(entry.generation, { final: FINAL.has(entry.status), createdAt: entry.createdAt });
}
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
