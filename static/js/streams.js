// The streams of many generations over one socket, keyed by generation id
// (docs/protocol.md): which chunk comes next, duplicates dropped, a gap filled
// by asking the server to replay from the log, and what `subscribe` sends
// after a drop. Knows nothing of the page: the chat page uses it, and so can
// a page with several streaming columns.

export const ACTIVE = new Set(["queued", "streaming"]);
export const FINAL = new Set(["done", "stopped", "failed", "interrupted"]);

const RESUBSCRIBE_DELAY = 250; // ms: gather the gaps of one burst into one replay
const MAX_LISTED = 64; // the server's limit on generations named in one subscribe

export class GenerationStreams {
  /** @param {{resubscribe: () => void}} options called when a replay is needed */
  constructor({ resubscribe }) {
    /** @type {Map<string, {lastSeq: number, final: boolean, createdAt: string}>} */
    this.items = new Map();
    this.resubscribe = resubscribe;
    this.timer = null;
  }

  has(id) {
    return this.items.has(id);
  }

  /** Follow generation `id`; `final` when its whole text is already shown. */
  track(id, { final = false, createdAt = "" } = {}) {
    let item = this.items.get(id);
    if (!item) {
      item = { lastSeq: 0, final, createdAt };
      this.items.set(id, item);
    }
    if (final) item.final = true;
    if (createdAt && !item.createdAt) item.createdAt = createdAt;
    return item;
  }

  /** Its whole text is known now (a `done` frame, or the saved reply): replays add nothing. */
  finish(id) {
    this.track(id).final = true;
  }

  /** Forget what was received of `id`: the next chunks start it over from seq 1. */
  restart(id) {
    const item = this.track(id);
    item.lastSeq = 0;
    item.final = false;
  }

  /**
   * Whether frame `seq` of generation `id` is the next one to show. A frame
   * already seen is dropped; one past a gap is dropped too, and the missing
   * frames are asked for again (a `subscribe` with this position).
   */
  accept(id, seq) {
    const item = this.items.get(id);
    if (!item) {
      this.requestReplay(); // its `message` frame was missed: the server resends it
      return false;
    }
    if (seq <= item.lastSeq) return false;
    if (item.final) {
      item.lastSeq = seq;
      return false;
    }
    if (seq !== item.lastSeq + 1) {
      this.requestReplay();
      return false;
    }
    item.lastSeq = seq;
    return true;
  }

  requestReplay() {
    if (this.timer !== null) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.resubscribe();
    }, RESUBSCRIBE_DELAY);
  }

  /** The `generations` and `latest` fields of a `subscribe` frame. */
  subscription() {
    const generations = {};
    let latest = null;
    for (const [id, item] of this.items) {
      if (!latest || item.createdAt > this.items.get(latest).createdAt) latest = id;
    }
    const active = [...this.items].filter(([, item]) => !item.final).slice(-MAX_LISTED);
    for (const [id, item] of active) generations[id] = item.lastSeq;
    return { generations, latest };
  }
}
