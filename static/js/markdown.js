// Markdown for model output: markdown-it with raw HTML off, then DOMPurify,
// so nothing a model writes can run script or restyle the page.
import "../vendor/markdown-it/markdown-it.min.js";
import "../vendor/dompurify/purify.min.js";
import hljs from "../vendor/highlightjs/highlight.min.js";

const { markdownit, DOMPurify } = globalThis;

const md = markdownit({ html: false, linkify: true, breaks: false, typographer: false });
// A remote image in a reply is fetched as soon as it renders: a prompt
// injection could use one to send the conversation elsewhere.
md.disable("image");

const PURIFY_OPTIONS = {
  ALLOWED_TAGS: [
    "a", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
    "li", "ol", "p", "pre", "s", "strong", "table", "tbody", "td", "th", "thead", "tr", "ul",
  ],
  ALLOWED_ATTR: ["href", "title", "class", "start", "style"],
  ALLOW_DATA_ATTR: false,
};
const TABLE_ALIGN = /^text-align:\s*(left|right|center);?$/;

DOMPurify.addHook("uponSanitizeAttribute", (node, data) => {
  // markdown-it writes style only for table column alignment.
  if (data.attrName === "style" && !TABLE_ALIGN.test(data.attrValue)) data.keepAttr = false;
  if (data.attrName === "class" && !/^language-[\w+#.-]+$/.test(data.attrValue)) data.keepAttr = false;
});
DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A") {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer nofollow");
  }
});

hljs.configure({ ignoreUnescapedHTML: true });

/** Return `text` (Markdown) as sanitized HTML. */
export function renderMarkdown(text) {
  return DOMPurify.sanitize(md.render(text || ""), PURIFY_OPTIONS);
}

/** Highlight the code blocks under `root` that are not highlighted yet. */
export function highlightCode(root) {
  for (const block of root.querySelectorAll("pre code")) {
    if (block.dataset.highlighted) continue;
    const language = /(?:^|\s)language-([\w+#.-]+)/.exec(block.className)?.[1];
    if (language && !hljs.getLanguage(language)) continue;
    hljs.highlightElement(block);
  }
}

/** Give each code block under `root` a button that copies its code. */
export function addCodeCopyButtons(root) {
  for (const pre of root.querySelectorAll("pre")) {
    if (pre.querySelector(".code-copy")) continue;
    const code = pre.querySelector("code") || pre;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "button button-small code-copy";
    button.textContent = "Copy";
    button.setAttribute("aria-label", "Copy the code");
    button.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(code.textContent);
        button.classList.add("copied");
        button.textContent = "Copied";
        setTimeout(() => {
          button.classList.remove("copied");
          button.textContent = "Copy";
        }, 1500);
      } catch {
        button.textContent = "Could not copy";
      }
    });
    pre.classList.add("code-block");
    pre.append(button);
  }
}
