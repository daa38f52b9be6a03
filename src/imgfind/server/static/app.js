// imgfind web UI: native ES modules, no build step. Talks to the REST API under api/.
// URLs are relative so the page also works when the server is mounted under a prefix.
// This entry wires the top bar and menus, then starts the page from its URL (nav.js);
// each view and job lives in its own module under js/.

import { dropCollection, openCreate, selectCollection } from "./js/collections.js";
import { $ } from "./js/dom.js";
import { anyDialogOpen } from "./js/dragdrop.js";
import { addFilterRow, clearFilters } from "./js/filters.js";
import { openIndex, resumeJob } from "./js/jobs.js";
import { goTo, start } from "./js/nav.js";
import { openReembed } from "./js/reembed.js";
import { run, searchImage, searchText } from "./js/search.js";
import { clearSelection } from "./js/select.js";
import { renderKeyDot } from "./js/settings.js";
import { K_STORE, state, ui } from "./js/state.js";
import "./js/upload.js";

ui.form.addEventListener("submit", (e) => {
  e.preventDefault();
  if (state.view !== "gallery") state.view = "gallery";
  document.body.dataset.view = "gallery";
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

// The collection menu.
const menu = $("#collection-menu");
const fromMenu = (fn) => () => { menu.open = false; fn(); };
$("#menu-index").addEventListener("click", fromMenu(openIndex));
$("#menu-create").addEventListener("click", fromMenu(openCreate));
$("#menu-reembed").addEventListener("click", fromMenu(openReembed));
$("#menu-drop").addEventListener("click", fromMenu(dropCollection));
$("#menu-duplicates").addEventListener("click", fromMenu(() => goTo("duplicates")));
$("#dups-back").addEventListener("click", () => goTo("gallery"));
document.addEventListener("click", (e) => { if (menu.open && !menu.contains(e.target)) menu.open = false; });

document.addEventListener("keydown", (e) => {
  if (anyDialogOpen() || e.target.matches("input, textarea, select")) return;
  // "/" jumps to the search box, as on most search sites.
  if (e.key === "/") {
    e.preventDefault();
    ui.q.focus();
  } else if (e.key === "Escape" && state.selected.size) {
    clearSelection();
  }
});

// Sticky date headers sit just below the sticky top bar, whatever its height.
const topbar = $(".topbar");
new ResizeObserver(() => {
  document.documentElement.style.setProperty("--topbar-h", `${topbar.offsetHeight}px`);
}).observe(topbar);

document.body.dataset.view = "gallery";
const saved = localStorage.getItem(K_STORE);
ui.k.value = saved && [...ui.k.options].some((o) => o.value === saved) ? saved : "20";
renderKeyDot();
start().then(resumeJob);
