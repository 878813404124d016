// The sidebar: pages of conversations loaded as the list scrolls, search, rename, pin,
// delete with undo, share links; and, on a conversation opened from a search result,
// scrolling to the message that matched.

const nav = document.getElementById("sidebar-nav");
const list = document.getElementById("conversation-list");
const toast = document.getElementById("sidebar-toast");
const toastText = document.getElementById("sidebar-toast-text");
const undoButton = document.getElementById("sidebar-undo");
const csrf = () => nav?.querySelector("input[name=csrfmiddlewaretoken]")?.value ?? "";

async function post(url, fields = {}) {
  const body = new URLSearchParams(fields);
  const response = await fetch(url, {
    method: "POST",
    body,
    headers: { "X-CSRFToken": csrf() },
    credentials: "same-origin",
  });
  const data = await response.json().catch(() => ({ detail: "The server did not answer." }));
  if (!response.ok) throw new Error(data.detail || "That did not work.");
  return data;
}

const itemUrl = (item, action) => `/c/${item.dataset.id}/${action}`;

let toastTimer = null;
function say(text, { undo = null, seconds = 5 } = {}) {
  toastText.textContent = text;
  undoButton.hidden = undo === null;
  undoButton.onclick = undo;
  toast.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { toast.hidden = true; }, seconds * 1000);
}

// ---- loading more as the list scrolls -------------------------------------
const observer = new IntersectionObserver((entries) => {
  for (const entry of entries) if (entry.isIntersecting) loadMore(entry.target);
}, { root: document.getElementById("sidebar"), rootMargin: "200px" });

async function loadMore(marker) {
  observer.unobserve(marker);
  const params = new URLSearchParams({ before: marker.dataset.before, group: marker.dataset.group });
  const response = await fetch(`${nav.dataset.listUrl}?${params}`, { credentials: "same-origin" });
  if (!response.ok) { observer.observe(marker); return; }
  const template = document.createElement("template");
  template.innerHTML = await response.text();
  marker.replaceWith(template.content);
  watchMarker();
}

function watchMarker() {
  const marker = list?.querySelector(".conversation-more");
  if (marker) observer.observe(marker);
}

// ---- actions on one conversation ------------------------------------------
const actions = {
  rename(item) {
    // An inline field in place of the title: Enter (or leaving it) saves, Esc cancels.
    if (item.querySelector(".conversation-rename")) return;
    const link = item.querySelector("a");
    const title = item.querySelector(".conversation-title");
    const field = document.createElement("input");
    Object.assign(field, { type: "text", className: "conversation-rename", value: title.textContent, maxLength: 200 });
    field.setAttribute("aria-label", "New title");
    link.hidden = true;
    link.after(field);
    field.focus();
    field.select();
    let finished = false;
    const finish = async (save) => {
      if (finished) return;
      finished = true;
      const wanted = field.value;
      field.remove();
      link.hidden = false;
      if (!save || wanted.trim() === title.textContent.trim()) return;
      try {
        const data = await post(itemUrl(item, "rename"), { title: wanted });
        title.textContent = data.title;
        const heading = document.getElementById("chat-title");
        if (heading && link.classList.contains("active")) heading.textContent = data.title;
      } catch (error) {
        say(error.message);
      }
    };
    field.addEventListener("keydown", (event) => {
      if (event.isComposing || (event.key !== "Enter" && event.key !== "Escape")) return;
      event.preventDefault();
      event.stopPropagation(); // Esc here cancels the rename, not the reply streaming
      finish(event.key === "Enter");
    });
    field.addEventListener("blur", () => finish(true));
  },
  async pin(item) {
    const pinned = item.dataset.pinned !== "true";
    await post(itemUrl(item, "pin"), { pinned: String(pinned) });
    await reloadList();
  },
  async share(item) {
    // The open conversation is shared as shown: up to the last message of the branch on screen.
    const shown = item.querySelector("a.active") ? [...document.querySelectorAll("#messages .message[data-id]")].pop() : null;
    const data = await post(itemUrl(item, "share"), shown?.dataset.id ? { leaf: shown.dataset.id } : {});
    const dialog = document.getElementById("share-dialog");
    document.getElementById("share-url").value = data.url;
    dialog.showModal();
  },
  async delete(item) {
    const data = await post(itemUrl(item, "delete"));
    const wasOpen = item.querySelector("a.active") !== null;
    item.hidden = true;
    say("Conversation deleted.", {
      seconds: data.undo_seconds,
      undo: async () => {
        await post(itemUrl(item, "restore"));
        item.hidden = false;
        say("Restored.");
      },
    });
    if (wasOpen) setTimeout(() => { if (item.hidden) window.location.assign("/"); }, data.undo_seconds * 1000);
  },
};

async function reloadList() {
  const response = await fetch(nav.dataset.listUrl, { credentials: "same-origin" });
  if (!response.ok) return;
  const active = list.querySelector("a.active")?.closest("li")?.dataset.id;
  list.innerHTML = await response.text();
  if (active) list.querySelector(`li[data-id="${active}"] a`)?.classList.add("active");
  watchMarker();
}

list?.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const item = button.closest("li.conversation-item");
  button.closest("details")?.removeAttribute("open");
  try {
    await actions[button.dataset.action](item);
  } catch (error) {
    say(error.message);
  }
});

document.getElementById("share-copy")?.addEventListener("click", async () => {
  const field = document.getElementById("share-url");
  field.select();
  try { await navigator.clipboard.writeText(field.value); say("Link copied."); } catch { /* selected for copying by hand */ }
});
document.getElementById("share-close")?.addEventListener("click", () => document.getElementById("share-dialog").close());

// ---- search ----------------------------------------------------------------
const searchForm = document.getElementById("sidebar-search");
const searchInput = document.getElementById("sidebar-search-input");
const results = document.getElementById("search-results");
let searchTimer = null;
let searchSeq = 0;

async function search() {
  const q = searchInput.value.trim();
  const seq = ++searchSeq;
  if (!q) { results.hidden = true; results.replaceChildren(); nav.hidden = false; return; }
  const response = await fetch(`${searchForm.action}?${new URLSearchParams({ q })}`, { credentials: "same-origin" });
  if (seq !== searchSeq || !response.ok) return;
  results.innerHTML = await response.text();
  results.hidden = false;
  nav.hidden = true;
}

searchForm?.addEventListener("submit", (event) => { event.preventDefault(); search(); });
searchInput?.addEventListener("input", () => { clearTimeout(searchTimer); searchTimer = setTimeout(search, 250); });

// ---- opened at a matching message -------------------------------------------
function showFound() {
  const id = new URLSearchParams(window.location.search).get("m");
  if (!id) return;
  const found = document.querySelector(`#messages .message[data-id="${CSS.escape(id)}"]`);
  if (!found) return;
  found.classList.add("message-found");
  found.scrollIntoView({ block: "center" });
}

watchMarker();
if (document.readyState === "complete") setTimeout(showFound, 50);
else window.addEventListener("load", () => setTimeout(showFound, 50));
