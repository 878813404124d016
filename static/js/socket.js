// A websocket that reopens itself after a drop: 0.5 s, 1 s, 2 s, 4 s, then
// every 5 s, until it connects again. Refused for having too many sockets open
// (4429), it waits 30 s between tries: another tab has to close first.

const FIRST_DELAY = 500;
const MAX_DELAY = 5000;
const CLOSE_UNAUTHENTICATED = 4401;
const CLOSE_TOO_MANY_SOCKETS = 4429;
const CROWDED_DELAY = 30000;

export class ReconnectingSocket {
  /**
   * @param {string} url
   * @param {{open: () => void, frame: (frame: object) => void, close: (event: CloseEvent) => void}} handlers
   */
  constructor(url, handlers) {
    this.url = url;
    this.handlers = handlers;
    this.ws = null;
    this.attempt = 0;
    this.timer = null;
    this.stopped = false;
  }

  get connected() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  open() {
    clearTimeout(this.timer);
    this.timer = null;
    this.stopped = false;
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.addEventListener("open", () => {
      this.attempt = 0;
      this.handlers.open();
    });
    ws.addEventListener("message", (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (frame && typeof frame.type === "string") this.handlers.frame(frame);
    });
    ws.addEventListener("close", (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.handlers.close(event);
      if (this.stopped || event.code === CLOSE_UNAUTHENTICATED) return;
      this.retry(event.code === CLOSE_TOO_MANY_SOCKETS ? CROWDED_DELAY : null);
    });
  }

  retry(wait = null) {
    const delay = wait ?? Math.min(FIRST_DELAY * 2 ** this.attempt, MAX_DELAY);
    this.attempt += 1;
    this.timer = setTimeout(() => this.open(), delay);
  }

  /** Reconnect now instead of waiting out the backoff (the network came back). */
  wake() {
    if (this.timer !== null) this.open();
  }

  /** Send `frame` as JSON; return false when the socket is not open. */
  send(frame) {
    if (!this.connected) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  close() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = null;
    if (this.ws) this.ws.close(1000);
  }
}
