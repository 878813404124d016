// The messages of one conversation as the page shows them: one entry per
// message, its element, its raw text, and the rendering and scrolling. The
// page shows one path through the tree; messages on other branches keep an
// entry (a reply there may still stream) but no place in the list, and the
// `‹ 2/3 ›` switcher at each fork shows another branch instead.
import { addCodeCopyButtons, highlightCode, renderMarkdown } from "./markdown.js";
import { renderReplyState } from "./reply.js";
import { ACTIVE, FINAL } from "./streams.js";

const STICK_DISTANCE = 48; // px from the bottom that still counts as "at the bottom"
const EARLIER_BATCH = 40; // earlier messages shown at a time while scrolling up

/**
 * @typedef {{id: string, role: string, parent: ?string, generation: ?string, status: string,
 *   raw: string, stats: ?object, error: ?object, createdAt: string, el: HTMLElement,
 *   content: HTMLElement, stopRequested: boolean}} Entry
 */

export class Thread {
  constructor({ list, scroller, scrollDown, template, earlier }) {
    this.list = list;
    this.earlier = earlier;
    this.scroller = scroller;
    this.scrollDown = scrollDown;
    this.template = template;
    this.canCopy = Boolean(navigator.clipboard && window.isSecureContext);
    /** @type {Map<string, Entry>} by message id */
    this.entries = new Map();
    /** @type {Map<string, Entry>} replies by generation id */
    this.replies = new Map();
    /** @type {Map<string, ?string>} every message's parent, system messages too */
    this.parents = new Map();
    this.dirty = new Set();
    this.frameRequested = false;
    this.stickToBottom = true;
    this.batch = false; // rendering many messages: see endBatch
    this.cutNote = null;
    scroller.addEventListener("scroll", () => this.onScroll(), { passive: true });
    scrollDown.addEventListener("click", () => this.jumpToBottom());
  }

  /**
   * Take over the server-rendered messages, described by the page's JSON, which
   * lists every branch: those off the page get a detached element.
   */
  load(messages) {
    this.batch = true;
    for (const data of messages) {
      this.parents.set(data.id, data.parent ?? null);
      if (data.role !== "user" && data.role !== "assistant") continue;
      const el = this.list.querySelector(`.message[data-id="${CSS.escape(data.id)}"]`);
      const entry = el ? this.register(this.entry(el, data)) : this.create(data);
      if (!el) entry.stale = true; // rendered when first shown
      this.renderStatus(entry);
      if (entry.role !== "assistant") continue;
      if (ACTIVE.has(entry.status)) {
        // The server replays an unfinished reply from its first chunk.
        entry.raw = "";
        entry.content.replaceChildren();
      } else if (el) {
        this.decorate(entry);
      }
    }
    this.endBatch();
    this.renderSwitchers();
    this.watchEarlier();
  }

  // ---- earlier messages -----------------------------------------------------
  // A long conversation comes with its newest messages rendered; the older ones of the
  // branch are built here from the page's JSON as the reader scrolls up to them.

  /** The messages of the branch above the first one shown, nearest first. */
  hiddenAbove() {
    const first = this.list.querySelector('.message:not([data-id=""])');
    const above = [];
    for (let id = first ? this.parents.get(first.dataset.id) : null; id; id = this.parents.get(id)) {
      const entry = this.entries.get(id);
      if (entry) above.push(entry);
    }
    return above;
  }

  /** Show up to `count` more of the earlier messages, keeping what is in view in place. */
  showEarlier(count = EARLIER_BATCH) {
    const batch = this.hiddenAbove().slice(0, count).reverse();
    const height = this.scroller.scrollHeight;
    this.list.prepend(...batch.map((entry) => entry.el));
    this.batch = true;
    for (const entry of batch) {
      if (entry.stale || entry.role === "assistant") this.renderText(entry);
      entry.stale = false;
      this.renderStatus(entry);
    }
    this.endBatch();
    this.scroller.scrollTop += this.scroller.scrollHeight - height;
    this.renderSwitchers();
    this.updateEarlier();
  }

  updateEarlier() {
    if (!this.earlier) return;
    const left = this.hiddenAbove().length;
    this.earlier.hidden = left === 0;
    this.earlier.textContent = `Show ${left} earlier message${left === 1 ? "" : "s"}`;
  }

  watchEarlier() {
    if (!this.earlier) return;
    this.updateEarlier();
    this.earlier.addEventListener("click", () => this.showEarlier());
    const observer = new IntersectionObserver((seen) => {
      if (seen.some((item) => item.isIntersecting) && !this.earlier.hidden) this.showEarlier();
    }, { root: this.scroller, rootMargin: "400px 0px 0px 0px" });
    observer.observe(this.earlier);
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
    this.renderSwitchers();
    return true;
  }

  // ---- branches -----------------------------------------------------------

  /** The messages that share `entry`'s parent (itself included), oldest first. */
  siblings(entry) {
    return this.children(entry.parent);
  }

  children(parentId) {
    return [...this.entries.values()]
      .filter((e) => (e.parent ?? null) === (parentId ?? null) && e.id)
      .sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0));
  }

  /**
   * Show the branch through `entry`: in place of what followed its parent,
   * `entry` and below it the newest message at each step. Returns the new leaf.
   */
  showBranch(entry) {
    const parent = entry.parent ? this.entries.get(entry.parent) : null;
    if (entry.parent && !parent?.el.isConnected) return this.leaf();
    let el = parent ? parent.el.nextElementSibling : this.list.firstElementChild;
    while (el) {
      const next = el.nextElementSibling;
      if (el.dataset.id) el.remove();
      el = next;
    }
    this.batch = true;
    for (const node of this.pathDown(entry)) {
      this.list.append(node.el);
      // A reply may have streamed on while its branch was off the page.
      if (node.stale || node.role === "assistant") this.renderText(node);
      node.stale = false;
      this.renderStatus(node);
    }
    this.endBatch();
    this.renderSwitchers();
    return this.leaf();
  }

  /** The messages from `entry` down to the newest message under it. */
  pathDown(entry) {
    let newest = entry;
    const stack = [entry];
    while (stack.length) {
      const node = stack.pop();
      if (node.createdAt > newest.createdAt) newest = node;
      stack.push(...this.children(node.id));
    }
    const path = [];
    for (let node = newest; node && node !== entry; node = this.entries.get(node.parent)) path.push(node);
    return [entry, ...path.reverse()];
  }

  /** Show `‹ n/m ›` on every message shown that has siblings. */
  renderSwitchers() {
    for (const el of this.list.querySelectorAll(".message")) {
      const entry = this.entries.get(el.dataset.id);
      const switcher = el.querySelector(".branch-switcher");
      if (!entry || !switcher) continue;
      const siblings = this.siblings(entry);
      const index = siblings.indexOf(entry);
      switcher.hidden = siblings.length < 2;
      if (switcher.hidden) continue;
      switcher.querySelector(".branch-position").textContent = `${index + 1}/${siblings.length}`;
      switcher.querySelector(".branch-prev").disabled = index <= 0;
      switcher.querySelector(".branch-next").disabled = index >= siblings.length - 1;
    }
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
    if (FINAL.has(entry.status)) this.decorate(entry);
  }

  /** Highlight a finished reply's code blocks and give each a copy button. */
  decorate(entry) {
    highlightCode(entry.content);
    if (this.canCopy) addCodeCopyButtons(entry.content);
  }

  renderStatus(entry) {
    renderTime(entry);
    if (entry.model) entry.el.querySelector(".message-model").textContent = entry.model;
    if (entry.role !== "assistant") {
      entry.el.dataset.status = entry.status;
      return;
    }
    renderReplyState(entry.el, entry);
    if (!this.batch) this.markContextCut();
  }

  /** Messages rendered in a batch (`this.batch` set) mark the context's cut once, here. */
  endBatch() {
    this.batch = false;
    this.markContextCut();
  }

  /**
   * Say where the newest reply shown stops seeing the conversation, when older messages
   * were left out to fit its model's context: a note above the first message it was sent.
   */
  markContextCut() {
    this.cutNote ??= Object.assign(document.createElement("p"), { className: "context-cut" });
    this.cutNote.remove();
    const shown = this.list.querySelectorAll('.message[data-role="assistant"]');
    const reply = shown.length ? this.entries.get(shown[shown.length - 1].dataset.id) : null;
    const leftOut = reply ? reply.stats?.trimmed_messages || reply.trimmed : 0;
    if (!leftOut) return;
    const path = [];
    for (let id = reply.parent; id; ) {
      const node = this.entries.get(id);
      if (node) path.push(node);
      id = node ? node.parent : this.parents.get(id);
    }
    const first = path.reverse()[leftOut];
    if (!first?.el.isConnected) return;
    const what = leftOut === 1 ? "The message above was" : `The ${leftOut} messages above were`;
    this.cutNote.textContent = `${what} left out of the last reply to fit the model's context.`;
    first.el.before(this.cutNote);
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
      model: generation?.model?.name || "",
      createdAt: data.created_at || "",
      el,
      content: el.querySelector(".message-content"),
      stopRequested: false,
    };
  }
}

const TIME_FORMAT = { hour: "2-digit", minute: "2-digit" };

/** Show when the message was sent, in the reader's time zone. */
function renderTime(entry) {
  const time = entry.el.querySelector(".message-time");
  const date = entry.createdAt ? new Date(entry.createdAt) : null;
  if (!time || !date || Number.isNaN(date.getTime())) return;
  time.dateTime = entry.createdAt;
  time.textContent = date.toLocaleTimeString([], TIME_FORMAT);
  time.title = date.toLocaleString();
}
