// The notice above a streaming page's composer (chat, compare): a refusal, a lost
// connection or a failed action, with a link to the account's Limits page when a
// per-user limit refused.

/** Refusals for a per-user limit: the notice links to the account's Limits page. */
const LIMIT_CODES = new Set(["too_many_running", "rate_limited", "daily_tokens", "too_many_sockets"]);

const notice = document.getElementById("notice");
const noticeText = document.getElementById("notice-text");
const noticeLimits = document.getElementById("notice-limits");

export function showNotice(text, code = "") {
  noticeText.textContent = text;
  notice.dataset.code = code;
  noticeLimits.hidden = !LIMIT_CODES.has(code);
  notice.hidden = false;
}

export function hideNotice() {
  notice.hidden = true;
  noticeText.textContent = "";
  delete notice.dataset.code;
}

/** The code of the notice shown (undefined when none is). */
export function noticeCode() {
  return notice.dataset.code;
}

/** The text the notice holds, such as the refusal the server rendered into the page. */
export function noticeMessage() {
  return noticeText.textContent;
}

document.getElementById("notice-dismiss").addEventListener("click", hideNotice);
