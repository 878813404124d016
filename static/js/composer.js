// Textarea helpers shared by the start form and the chat composer.

const MAX_HEIGHT = 240;

/** Call `submit` on Enter; Shift+Enter inserts a newline, and IME composition is left alone. */
export function submitOnEnter(textarea, submit) {
  textarea.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" || event.shiftKey || event.isComposing || event.keyCode === 229) return;
    event.preventDefault();
    submit();
  });
}

/** Grow `textarea` with its text up to a limit; return the function that refits it. */
export function autoGrow(textarea) {
  const fit = () => {
    textarea.style.height = "auto";
    textarea.style.height = `${Math.min(textarea.scrollHeight + 2, MAX_HEIGHT)}px`;
  };
  textarea.addEventListener("input", fit);
  fit();
  return fit;
}
