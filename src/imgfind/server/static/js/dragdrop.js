// Page-wide drag and drop and paste: search by an image or add images.

import { searchImage } from "./search.js";
import { state, ui } from "./state.js";
import { openUpload } from "./upload.js";

// ---------------------------------------------------------------- page-wide drag and drop, paste

let dragDepth = 0;
export const hasFiles = (e) => [...(e.dataTransfer?.types || [])].includes("Files");
export const anyDialogOpen = () => [...document.querySelectorAll("dialog")].some((d) => d.open);

window.addEventListener("dragenter", (e) => {
  if (!hasFiles(e) || anyDialogOpen() || !state.collection) return;
  dragDepth++;
  ui.overlay.hidden = false;
});
window.addEventListener("dragover", (e) => {
  if (!hasFiles(e)) return;
  e.preventDefault();
  for (const z of ui.overlay.querySelectorAll(".drop-zone")) z.classList.toggle("over", z.contains(e.target));
});
window.addEventListener("dragleave", () => {
  dragDepth = Math.max(0, dragDepth - 1);
  if (dragDepth === 0) ui.overlay.hidden = true;
});
window.addEventListener("drop", (e) => {
  if (!hasFiles(e)) return;
  e.preventDefault();
  dragDepth = 0;
  ui.overlay.hidden = true;
  if (anyDialogOpen() || !state.collection) return;
  const files = [...e.dataTransfer.files];
  const zone = e.target.closest?.(".drop-zone")?.dataset.drop;
  if (zone === "add") openUpload(files);
  else searchImage(files[0]);
});

window.addEventListener("paste", (e) => {
  if (anyDialogOpen() || !state.collection) return;
  const file = [...(e.clipboardData?.files || [])].find((f) => f.type.startsWith("image/"));
  if (file) { e.preventDefault(); searchImage(file); }
});
