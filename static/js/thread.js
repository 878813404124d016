// The messages of one conversation as the page shows them: one entry per
// message, its element, its raw text, and the rendering and scrolling. The
// page shows one path through the tree; replies on other branches keep an
// entry (they may still stream) but no place in the list.
import { highlightCode, renderMarkdown } from "./markdown.js";
import { renderReplyState } from "./reply.js";
import { ACTIVE, FINAL } from "./streams.js";

const STICK_DISTANCE = 48; // px from the bottom that still counts as "at the bottom"

/**
 * @typedef {{id: string, role: string, parent: ?string, generation: ?string, status: string,
 *   raw: string, stats: ?object, error: ?object, createdAt: string, el: HTMLElement,
 *   content: HTMLElement, stopRequested: boolean}} Entry
 */

export class Thread {
  constructor({ list, scroller, scrollDown, template }) {
    this.list = list;
    this.scroller = scroller;
    this.scrollDown = scrollDown;
    this.template = template;
    this.canCopy = Boolean(navigator.clipboard && window.isSecureContext);
    /** @type {Map<string, Entry>} by message id */
    this.entries = new Map();
    /** @type {Map<string, Entry>} replies by generation id */
    this.replies = new Map();
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
      const entry = this.register(this.entry(el, data));
      if (entry.role !== "assistant") continue;
      this.renderStatus(entry);
      if (ACTIVE.has(entry.status)) {
        // The server replays an unfinished reply from its first chunk.
        entry.raw = "";
        entry.content.replaceChildren();
      } else {
        highlightCode(entry.content);
      }
    }
  }

  get(id) {
    return this.entries.get(id);
  }

  reply(generationId) {
    return this.replies.get(generationId);
  }

  /** Build a detached message element from the page's template. */
  create(data) {
    const el = this.template.content.firstElementChild.cloneNode(true);
    el.dataset.id = data.id || "";
    el.dataset.role = data.role;
    el.dataset.status = data.status;
    if (data.client_id) el.dataset.clientId = data.client_id;
    if (data.generation) el.dataset.generation = data.generation.id;
    if (data.role === "assistant") el.querySelector(".message-content").classList.add("markdown-body");
    return this.register(this.entry(el, data));
  }

  register(entry) {
    if (entry.id) this.entries.set(entry.id, entry);
    if (entry.generation) this.replies.set(entry.generation, entry);
    return entry;
  }

  /** Give a message shown before it was saved (an optimistic send) its saved id. */
  adopt(entry, id) {
    entry.id = id;
    entry.el.dataset.id = id;
    delete entry.el.dataset.pending;
    this.entries.set(id, entry);
  }

  /**
   * Show a new message after its parent, in place of what followed the parent
   * (another branch), unless that branch is newer: then the message stays
   * off the page. Returns whether it is shown.
   */
  place(entry, parentId) {
    const parent = parentId ? this.entries.get(parentId) : null;
    if (parentId && !parent?.el.isConnected) return false;
    const following = [];
    for (let el = parent ? parent.el.nextElementSibling : this.list.firstElementChild; el; el = el.nextElementSibling) {
      if (el.dataset.id && el !== entry.el) following.push(el);
    }
    const shown = following.length ? this.entries.get(following[0].dataset.id) : null;
    if (shown && entry.createdAt && shown.createdAt > entry.createdAt) return false;
    for (const el of following) el.remove();
    this.list.append(entry.el);
    return true;
  }

  isShown(entry) {
    return entry.el.isConnected;
  }

  /** The last message shown: the one a new message follows. */
  leaf() {
    const shown = this.list.querySelectorAll('.message:not([data-id=""])');
    const last = shown[shown.length - 1];
    return last ? this.entries.get(last.dataset.id) : undefined;
  }

  /** The replies shown that are still running. */
  activeReplies() {
    return [...this.replies.values()].filter((e) => this.isShown(e) && ACTIVE.has(e.status));
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
    if (entry.role !== "assistant") {
      entry.el.dataset.status = entry.status;
      return;
    }
    renderReplyState(entry.el, entry);
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
    const generation = data.generation || null;
    return {
      id: data.id || "",
      role: data.role,
      parent: data.parent ?? null,
      generation: generation?.id ?? null,
      status: data.status,
      raw: data.content || "",
      stats: generation?.stats || null,
      error: generation?.error || null,
      trimmed: generation?.trimmed_messages || 0,
      createdAt: data.created_at || "",
      el,
      content: el.querySelector(".message-content"),
      stopRequested: false,
    };
  }
}
