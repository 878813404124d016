// Small behaviours of every page.

document.addEventListener("click", (event) => {
  const dismiss = event.target.closest(".flash-dismiss");
  if (dismiss) dismiss.closest(".flash")?.remove();
});
