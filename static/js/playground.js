// The playground (docs/playground.md): a raw prompt, every parameter of the
// model's backend, and the completion streamed over the websocket by generation
// id (docs/protocol.md): `subscribe` by `generation`, `chunk` / `done` / `queue`
// frames, `stop`. streams.js orders the chunks; tokens.js draws the token view.
// Every POST carries the CSRF token; model text goes in as textContent only.
import { renderReplyState } from "./reply.js";
import { ReconnectingSocket } from "./socket.js";
import { FINAL, GenerationStreams } from "./streams.js";
import { TokenView } from "./tokens.js";

const config = JSON.parse(document.getElementById("playground-config").textContent);
const form = document.getElementById("playground-form");
const csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
const $ = (id) => document.getElementById(id);
const promptInput = $("prompt-input");
const runButton = $("run-button");
const stopButton = $("stop-button");
const errorBox = $("playground-error");
const runState = $("run-state");
const outputPrompt = $("output-prompt");
const outputText = $("output-text");
const tokens = new TokenView($("token-view"), $("tokens-empty"));

const streams = new GenerationStreams({ resubscribe: () => subscribe() });
/** The completion on screen: {id, status, position}. */
let current = null;

// ---- requests -----------------------------------------------------------------

class Refused extends Error {
  constructor(error) {
    super(error?.detail || "Something went wrong.");
    this.param = error?.param || null;
  }
}

async function post(url, body) {
  let response;
  try {
    response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify(body),
    });
  } catch {
    throw new Refused({ detail: "Gatehouse cannot be reached: check the connection and try again." });
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    // Not JSON (a proxy's error page): said below.
  }
  if (!response.ok) throw new Refused(data?.error || { detail: `The server answered ${response.status}.` });
  return data;
}

function showError(message, param = null) {
  errorBox.textContent = message;
  errorBox.hidden = !message;
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  const field = param && $(`param-${param}`);
  if (field) {
    field.setAttribute("aria-invalid", "true");
    field.focus();
  }
}

// ---- the form -----------------------------------------------------------------

/** The parameters as the controls hold them; null (and a message) when one is out of range. */
function collectParams() {
  const params = {};
  for (const input of form.querySelectorAll(".param [data-kind]")) {
    const kind = input.dataset.kind;
    if (kind === "bool") {
      if (input.checked) params[input.name] = true;
    } else if (kind === "choice") {
      if (input.value) params[input.name] = input.value === "true";
    } else {
      if (!input.checkValidity()) {
        showError(`${input.name}: ${input.validationMessage}`, input.name);
        return null;
      }
      if (input.value !== "") params[input.name] = Number(input.value);
    }
  }
  const stopInput = $("param-stop");
  const stop = stopInput.value.split("\n").filter((line) => line.length > 0);
  if (stop.length > Number(stopInput.dataset.max)) {
    showError(`stop takes at most ${stopInput.dataset.max} sequences.`, "stop");
    return null;
  }
  if (stop.length) params.stop = stop;
  const grammarType = $("grammar-type");
  if (grammarType?.value) params.grammar = { type: grammarType.value, value: $("grammar-value").value };
  return params;
}

function request() {
  const params = collectParams();
  return params && { model: config.model, prompt: promptInput.value, params };
}

/** Whether the completion asks for token details (so the token view has something). */
function detailsAsked(params) {
  return config.backend === "tgi" ? Boolean(params.details || params.top_n_tokens) : params.logprobs != null;
}

async function run(event) {
  event.preventDefault();
  if (current && !FINAL.has(current.status)) return;
  showError("");
  const body = request();
  if (!body) return;
  if (!body.prompt) {
    showError("Write a prompt first.");
    promptInput.focus();
    return;
  }
  runButton.disabled = true;
  try {
    const started = await post(config.completeUrl, body);
    begin(started.generation, body, detailsAsked(started.params));
  } catch (error) {
    showError(error.message, error.param);
    runButton.disabled = false;
  }
}

function begin(id, body, withDetails) {
  remember(id);
  current = { id, status: "queued", position: null };
  streams.track(id);
  outputPrompt.textContent = body.prompt;
  outputText.textContent = "";
  tokens.reset();
  $("tokens-empty").hidden = withDetails;
  render({});
  subscribe();
}

function render({ stats = null, error = null } = {}) {
  renderReplyState(runState, { status: current.status, stats, error, position: current.position });
  const running = !FINAL.has(current.status);
  runButton.disabled = running;
  stopButton.hidden = !running;
  stopButton.disabled = false;
  if (current.status === "streaming") runState.querySelector(".status-badge").textContent = "Streaming";
}

// ---- the last completion, found again after a reload -------------------------

const LAST_KEY = `playground:last:${config.model}`;

function remember(id) {
  try {
    sessionStorage.setItem(LAST_KEY, id);
  } catch {
    // Storage refused (private mode): a reload starts afresh.
  }
}

function detailsUrl(id) {
  return config.generationsPath.replace(/0{8}-0{4}-0{4}-0{4}-0{12}/, id);
}

/** Show this tab's last completion again: as saved once it ended, else streaming on. */
async function restore() {
  let id = null;
  try {
    id = sessionStorage.getItem(LAST_KEY);
  } catch {
    return;
  }
  if (!id || current) return;
  const response = await fetch(detailsUrl(id), { credentials: "same-origin" });
  if (!response.ok || current) return;
  const saved = await response.json();
  begin(saved.id, { prompt: saved.input.prompt }, detailsAsked(saved.params));
  if (FINAL.has(saved.status)) {
    streams.finish(saved.id);
    outputText.textContent = saved.text;
    tokens.add(saved.tokens);
    current.status = saved.status;
    render({ stats: saved.stats, error: saved.error });
  }
}

// ---- the socket ---------------------------------------------------------------

function subscribe() {
  if (!current) return;
  const after = streams.items.get(current.id)?.lastSeq ?? 0;
  socket.send({ type: "subscribe", generation: current.id, after_seq: after });
}

const HANDLERS = {
  chunk(frame) {
    if (frame.generation !== current?.id || !streams.accept(frame.generation, frame.seq)) return;
    outputText.append(typeof frame.text === "string" ? frame.text : "");
    tokens.add(frame.tokens);
    if (current.status !== "streaming") {
      current.status = "streaming";
      render();
    }
  },
  done(frame) {
    if (frame.generation !== current?.id || !streams.accept(frame.generation, frame.seq)) return;
    streams.finish(frame.generation);
    current.status = FINAL.has(frame.status) ? frame.status : "failed";
    render({ stats: frame.stats, error: frame.error });
  },
  queue(frame) {
    if (frame.generation !== current?.id) return;
    current.position = frame.position;
    render();
  },
  /** The token log expired (a reconnect long after the end): the saved record says it all. */
  async generation(frame) {
    const saved = frame.generation;
    if (saved?.id !== current?.id) return;
    streams.finish(saved.id);
    outputText.textContent = saved.text || "";
    current.status = saved.status;
    render({ stats: saved.stats, error: saved.error });
    const response = await fetch(detailsUrl(saved.id), { credentials: "same-origin" });
    if (response.ok) {
      tokens.reset();
      tokens.add((await response.json()).tokens);
    }
  },
  error(frame) {
    showError(frame.detail || "Something went wrong.");
  },
};

const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
const socket = new ReconnectingSocket(`${scheme}//${window.location.host}${config.wsPath}`, {
  open: () => subscribe(),
  frame: (frame) => HANDLERS[frame.type]?.(frame),
  close: () => {},
});
socket.open();
restore();

// ---- the rest of the page -----------------------------------------------------

form.addEventListener("submit", run);
promptInput.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) run(event);
});
stopButton.addEventListener("click", () => {
  if (!current || FINAL.has(current.status)) return;
  stopButton.disabled = true;
  socket.send({ type: "stop", generation: current.id });
});

$("model-select").addEventListener("change", () => $("model-form").requestSubmit());

for (const [tab, panel] of [["tab-text", "output-panel"], ["tab-tokens", "tokens-panel"]]) {
  $(tab).addEventListener("click", () => {
    for (const other of ["tab-text", "tab-tokens"]) $(other).setAttribute("aria-selected", String(other === tab));
    $("output-panel").hidden = panel !== "output-panel";
    $("tokens-panel").hidden = panel !== "tokens-panel";
  });
}

$("code-button").addEventListener("click", async () => {
  showError("");
  const body = request();
  if (!body) return;
  try {
    const code = await post(config.codeUrl, body);
    $("code-curl").textContent = code.curl;
    $("code-openai").textContent = code.openai;
    $("code-backend").textContent = code.backend;
    $("code-backend-title").textContent = code.backend_title;
    const leftOut = $("code-left-out");
    leftOut.hidden = !code.left_out.length;
    leftOut.textContent = `Not taken by /v1/completions, only by the server itself: ${code.left_out.join(", ")}.`;
    $("code-panel").hidden = false;
    $("code-panel").scrollIntoView({ block: "nearest" });
  } catch (error) {
    showError(error.message, error.param);
  }
});

$("preset-save").addEventListener("click", async () => {
  showError("");
  const body = request();
  if (!body) return;
  try {
    const { preset } = await post(config.presetUrl, { ...body, name: $("preset-name").value });
    const select = $("preset-select");
    if (![...select.options].some((option) => option.value === preset.id)) {
      select.append(new Option(preset.name, preset.id));
    }
    $("preset-saved").textContent = `Saved as “${preset.name}”.`;
  } catch (error) {
    showError(error.message, error.param);
  }
});

const renderButton = $("template-render");
renderButton?.addEventListener("click", async () => {
  const errorEl = $("template-error");
  const output = $("template-output");
  errorEl.hidden = true;
  let messages;
  try {
    messages = JSON.parse($("template-messages").value);
  } catch (error) {
    errorEl.textContent = `The messages are not valid JSON: ${error.message}`;
    errorEl.hidden = false;
    return;
  }
  try {
    const { prompt } = await post(config.templateUrl, { model: config.model, messages });
    output.textContent = prompt;
    output.hidden = false;
    $("template-use").hidden = false;
  } catch (error) {
    errorEl.textContent = error.message;
    errorEl.hidden = false;
  }
});
$("template-use")?.addEventListener("click", () => {
  promptInput.value = $("template-output").textContent;
  promptInput.focus();
});
