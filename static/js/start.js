// The start form (home page and model card): Enter submits, Shift+Enter is a
// newline. Without JavaScript it is a plain form.
import { autoGrow, submitOnEnter } from "./composer.js";

for (const form of document.querySelectorAll("form[data-start-form]")) {
  const textarea = form.querySelector("textarea[data-enter-submit]");
  const button = form.querySelector("button[type=submit]");
  if (!textarea) continue;
  autoGrow(textarea);
  submitOnEnter(textarea, () => {
    if (textarea.value.trim()) form.requestSubmit();
  });
  form.addEventListener("submit", (event) => {
    if (form.dataset.submitting) {
      event.preventDefault();
      return;
    }
    form.dataset.submitting = "true";
    if (button) button.disabled = true;
  });
}

// Coming back with the Back button must not leave the form disabled.
window.addEventListener("pageshow", () => {
  for (const form of document.querySelectorAll("form[data-start-form]")) {
    delete form.dataset.submitting;
    const button = form.querySelector("button[type=submit]");
    if (button) button.disabled = false;
  }
});
