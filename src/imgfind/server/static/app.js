// imgfind web UI: native ES modules, no build step. Talks to the REST API under api/.
// URLs are relative so the page also works when the server is mounted under a prefix.
// This entry wires the top bar and starts the page; each view lives in js/.

import { loadCollections, selectCollection } from "./js/collections.js";
import { $ } from "./js/dom.js";
import { anyDialogOpen } from "./js/dragdrop.js";
import { addFilterRow, clearFilters } from "./js/filters.js";
import { readHash } from "./js/history.js";
import { run, searchImage, searchText } from "./js/search.js";
import { renderKeyDot } from "./js/settings.js";
import { K_STORE, OPS, state, ui } from "./js/state.js";
import "./js/viewer.js";
import "./js/upload.js";
import "./js/settings.js";
import "./js/dragdrop.js";
import "./js/gallery.js";

// ---------------------------------------------------------------- top bar

ui.form.addEventListener("submit", (e) => {
  e.preventDefault();
  searchText(ui.q.value);
});
ui.q.addEventListener("search", () => { if (!ui.q.value && state.query?.kind === "text") searchText(""); });
$("#image-search-btn").addEventListener("click", () => ui.searchFile.click());
ui.searchFile.addEventListener("change", () => {
  searchImage(ui.searchFile.files[0]);
  ui.searchFile.value = "";
});
ui.k.addEventListener("change", () => {
  localStorage.setItem(K_STORE, ui.k.value);
  if (state.query) run();
});
ui.collection.addEventListener("change", () => selectCollection(ui.collection.value));
ui.addFilter.addEventListener("click", () => addFilterRow());
ui.clearFilters.addEventListener("click", clearFilters);

document.addEventListener("keydown", (e) => {
  // "/" jumps to the search box, as on most search sites.
  if (e.key === "/" && !anyDialogOpen() && !e.target.matches("input, textarea, select")) {
    e.preventDefault();
    ui.q.focus();
  }
});

// ---------------------------------------------------------------- start

async function start() {
  const saved = localStorage.getItem(K_STORE);
  if (saved && [...ui.k.options].some((o) => o.value === saved)) ui.k.value = saved;
  else ui.k.value = "20";
  renderKeyDot();
  const h = readHash();
  state.filters = h.filters.filter((f) => Array.isArray(f) && f.length === 3)
    .map(([key, op, value]) => ({ key: String(key), op: OPS.some((o) => o.op === op) ? op : "$eq", value: String(value ?? "") }));
  if (h.q) { ui.q.value = h.q; state.query = { kind: "text", text: h.q }; }
  else if (h.like) state.query = { kind: "like", id: h.like, name: h.like };
  await loadCollections(h.c);
}

start();
