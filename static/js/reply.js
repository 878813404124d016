// How a reply's state reads on the page: its status label, error, stats and
// details. The one place that renders them; the template leaves them empty.

const BADGES = { stopped: "Stopped", failed: "Failed", interrupted: "Interrupted" };
const DEFAULT_DETAILS = {
  stopped: "The reply was stopped.",
  failed: "The model could not answer.",
  interrupted: "The reply was cut off.",
};

/** Show `status`, `error` and `stats` in the reply element `el`; `position` is where a
 * queued reply stands in its model's queue (1: next to start). */
export function renderReplyState(el, { status, stats, error, trimmed = 0, position = null }) {
  el.dataset.status = status;
  el.querySelector(".status-badge").textContent =
    status === "queued" && position ? `Queued — position ${position}` : BADGES[status] || "";
  el.querySelector(".error-detail").textContent = error?.detail || DEFAULT_DETAILS[status] || "";
  const parts = statsParts(stats);
  // The worker may leave out more than the page was told at the start: it counts the
  // prompt's tokens with the model's tokenizer, and its done frame says so.
  const leftOut = stats?.trimmed_messages || trimmed;
  const spans = parts.map(span);
  if (leftOut) {
    // First and marked: it stays in sight when the other figures wait for a hover.
    const notice = span(`${leftOut} earlier message${leftOut === 1 ? "" : "s"} left out to fit the model's context`);
    notice.className = "stats-context";
    spans.unshift(notice);
  }
  el.querySelector(".message-stats").replaceChildren(...spans);
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
  return parts;
}

/** Fill the details section of a reply from its generation's record (GET /generations/<id>/). */
export function renderDetails(section, details) {
  const rows = [
    ["Model", `${details.model.name} (${details.model.slug})`],
    ["Served as", details.backend_model_id],
    ["Revision", details.backend_revision],
    ["System fingerprint", details.system_fingerprint],
    ["Backend", details.backend],
    ["Endpoint", details.endpoint],
    ["Parameters", JSON.stringify(details.params)],
    ["Status", details.status],
  ];
  const list = section.querySelector(".details-list");
  list.replaceChildren();
  for (const [name, value] of rows) {
    if (!value) continue;
    const term = document.createElement("dt");
    const data = document.createElement("dd");
    term.textContent = name;
    data.textContent = value;
    list.append(term, data);
  }
  const input = details.input;
  section.querySelector(".details-input-text").textContent =
    input.rendered_prompt || input.prompt || JSON.stringify(input.messages, null, 2);
}

function span(text) {
  const el = document.createElement("span");
  el.textContent = text;
  return el;
}
