// The messages of one conversation as the page shows them: one entry per
// message, its element, its raw text, and the rendering and scrolling.
import { highlightCode, renderMarkdown } from "./markdown.js";

export const ACTIVE = new Set(["queued", "streaming"]);
export const FINAL = new Set(["done", "stopped", "failed", "interrupted"]);

const BADGES = { stopped: "Stopped", failed: "Failed", interrupted: "Interrupted" };
// Keep in step with templates/chat/_message.html.
const DEFAULT_DETAILS = {
  stopped: "The reply was stopped.",
  failed: "The model could not answer.",
  interrupted: "The reply was cut off.",
};
const STICK_DISTANCE = 48; // px from the bottom that still counts as "at the bottom"

/**
 * @typedef {{id: string, role: string, parent: ?string, status: string, raw: string,
 *   lastSeq: number, resyncing: boolean, stats: ?object, error: ?object,
 *   el: HTMLElement, content: HTMLElement, stopRequested: boolean}} Entry
 */

export class Thread {
  constructor({ list, scroller, scrollDown, template }) {
    this.list = list;
    this.scroller = scroller;
    this.scrollDown = scrollDown;
    this.template = template;
    this.canCopy = Boolean(navigator.clipboard && window.isSecureContext);
    /** @type {Map<string, Entry>} */
    this.entries = new Map();
    this.dirty = new Set();
    this.frameRequested = false;
    this.stickToBottom = true;
    scroller.addEventListener("scroll", () => this.onScroll(), { passive: true });
    scrollDown.addEventListener("click", () => this.jumpToBottom());
  }

  /** Take over the server-rendered messages, described by the page's JSON. */
  load(messages) {
    for (const data of messages) {
      const el = this.list.querySelector(`.message[data-id="${CSS.escape(data.id)}"]`);
      if (!el) continue;
      const entry = this.entry(el, data);
      this.entries.set(entry.id, entry);
      if (entry.role === "assistant" && ACTIVE.has(entry.status)) {
        // The server replays an unfinished reply from its first chunk.
        entry.raw = "";
        entry.content.replaceChildren();
      } else if (entry.role === "assistant") {
        highlightCode(entry.content);
      }
    }
  }

  get(id) {
    return this.entries.get(id);
  }

  /** Build a detached message element from the page's template. */
  create(data) {
    const el = this.template.content.firstElementChild.cloneNode(true);
    el.dataset.id = data.id || "";
    el.dataset.role = data.role;
    el.dataset.status = data.status;
    if (data.client_id) el.dataset.clientId = data.client_id;
    if (data.role === "assistant") el.querySelector(".message-content").classList.add("markdown-body");
    const entry = this.entry(el, data);
    if (entry.id) this.entries.set(entry.id, entry);
    return entry;
  }

  /** Give a message shown before it was saved (an optimistic send) its saved id. */
  adopt(entry, id) {
    entry.id = id;
    entry.el.dataset.id = id;
    delete entry.el.dataset.pending;
    this.entries.set(id, entry);
  }

  /** Put a new message after its parent; whatever followed the parent was another branch. */
  place(entry, parentId) {
    const parent = parentId ? this.entries.get(parentId) : null;
    if (parent) {
      let next = parent.el.nextElementSibling;
      while (next) {
        const following = next.nextElementSibling;
        if (next.dataset.id && next !== entry.el) {
          this.entries.delete(next.dataset.id);
          next.remove();
        }
        next = following;
      }
    }
    this.list.append(entry.el);
  }

  /** A reply known only from its chunks (its `message` frame was missed). */
  unknownReply(id) {
    const entry = this.create({ id, role: "assistant", status: "queued", content: "" });
    this.place(entry, null);
    return entry;
  }

  latestReply() {
    const replies = this.list.querySelectorAll('.message[data-role="assistant"]:not([data-id=""])');
    const last = replies[replies.length - 1];
    return last ? this.entries.get(last.dataset.id) : undefined;
  }

  activeReply() {
    for (const entry of this.entries.values()) {
      if (entry.role === "assistant" && ACTIVE.has(entry.status)) return entry;
    }
    return undefined;
  }

  // ---- rendering ----------------------------------------------------------

  /** Re-render a streaming reply at most once per animation frame. */
  scheduleRender(entry) {
    this.dirty.add(entry);
    if (this.frameRequested) return;
    this.frameRequested = true;
    requestAnimationFrame(() => {
      this.frameRequested = false;
      for (const item of this.dirty) this.renderText(item);
      this.followBottom();
    });
  }

  renderText(entry) {
    this.dirty.delete(entry);
    if (entry.role !== "assistant") {
      entry.content.textContent = entry.raw; // user text is never HTML
      return;
    }
    entry.content.innerHTML = renderMarkdown(entry.raw);
    // Highlighting once at the end spares the CPU while tokens arrive.
    if (FINAL.has(entry.status)) highlightCode(entry.content);
  }

  renderStatus(entry) {
    entry.el.dataset.status = entry.status;
    if (entry.role !== "assistant") return;
    entry.el.querySelector(".status-badge").textContent = BADGES[entry.status] || "";
    entry.el.querySelector(".error-detail").textContent =
      entry.error?.detail || DEFAULT_DETAILS[entry.status] || "";
    entry.el.querySelector(".message-stats").replaceChildren(...statsParts(entry.stats));
  }

  // ---- scrolling ----------------------------------------------------------

  onScroll() {
    const { scrollHeight, scrollTop, clientHeight } = this.scroller;
    this.stickToBottom = scrollHeight - scrollTop - clientHeight < STICK_DISTANCE;
    this.scrollDown.hidden = this.stickToBottom;
  }

  /** Keep the newest text in view, unless the reader scrolled up. */
  followBottom() {
    if (this.stickToBottom) this.scroller.scrollTop = this.scroller.scrollHeight;
  }

  jumpToBottom() {
    this.stickToBottom = true;
    this.scrollDown.hidden = true;
    this.scroller.scrollTop = this.scroller.scrollHeight;
  }

  entry(el, data) {
    el.querySelector(".copy-button").hidden = !this.canCopy;
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
      stopRequested: false,
    };
  }
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
