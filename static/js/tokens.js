// The token view: each generated token coloured by its probability, with the
// alternatives the server reported (TGI's top_n_tokens, OpenAI's logprobs) shown
// on hover or focus. Model text only ever goes in as textContent.

const BUCKETS = 10; // data-p="0" (under 10 %) … data-p="9" (90 % and more): see playground.css

export function percent(logprob) {
  if (logprob == null || !Number.isFinite(logprob)) return "?";
  const p = Math.exp(logprob) * 100;
  return p >= 10 ? `${p.toFixed(0)} %` : `${p.toPrecision(2)} %`;
}

/** A token's text with its whitespace made visible (quoted, newlines as \n). */
export function shown(text) {
  return JSON.stringify(text);
}

export class TokenView {
  /** @param {HTMLElement} root @param {HTMLElement} empty shown while there are no tokens */
  constructor(root, empty) {
    this.root = root;
    this.empty = empty;
    this.count = 0;
  }

  reset() {
    this.root.replaceChildren();
    this.count = 0;
    this.empty.hidden = false;
  }

  /** Append tokens as chunk frames carry them: [{text, logprob, top: [{text, logprob}]}]. */
  add(tokens) {
    if (!Array.isArray(tokens)) return;
    const fragment = document.createDocumentFragment();
    for (const token of tokens) {
      if (token && typeof token.text === "string") fragment.append(this.token(token));
    }
    this.root.append(fragment);
    this.empty.hidden = this.count > 0;
  }

  token({ text, logprob, top }) {
    this.count += 1;
    const el = document.createElement("span");
    el.className = "token";
    el.tabIndex = 0;
    const p = logprob == null ? null : Math.exp(logprob);
    el.dataset.p = p == null ? "none" : String(Math.min(BUCKETS - 1, Math.floor(p * BUCKETS)));
    const label = document.createElement("span");
    label.className = "token-text";
    label.textContent = text.replace(/\n/g, "↵\n");
    el.append(label, this.alternatives(text, logprob, Array.isArray(top) ? top : []));
    return el;
  }

  alternatives(text, logprob, top) {
    const box = document.createElement("span");
    box.className = "token-alts";
    box.setAttribute("role", "tooltip");
    const head = document.createElement("span");
    head.className = "token-alts-head";
    head.textContent = `${shown(text)} · ${percent(logprob)}`;
    box.append(head);
    for (const alternative of top) {
      const row = document.createElement("span");
      row.className = "token-alt";
      if (alternative.text === text) row.dataset.chosen = "true";
      const name = document.createElement("span");
      name.textContent = shown(String(alternative.text));
      const value = document.createElement("span");
      value.textContent = percent(alternative.logprob);
      row.append(name, value);
      box.append(row);
    }
    if (!top.length) {
      const none = document.createElement("span");
      none.className = "token-alt muted";
      none.textContent = "no alternatives asked for";
      box.append(none);
    }
    return box;
  }
}
