// Collection picker, counts, the field list for filters, and the first-collection form.

import { api, colPath } from "./api.js";
import { $, el, plural } from "./dom.js";
import { renderFilters } from "./filters.js";
import { showBanner, showError } from "./notify.js";
import { run } from "./search.js";
import { COLLECTION_STORE, state, ui } from "./state.js";

// ---------------------------------------------------------------- collections

export async function loadCollections(preferred) {
  let data;
  try {
    data = await api("api/collections");
  } catch (err) {
    showBanner(err, "Could not load collections");
    return;
  }
  state.collections = data.collections || [];
  ui.collection.replaceChildren(...state.collections.map((c) =>
    el("option", { value: c.name, text: c.name })));
  if (!state.collections.length) {
    state.collection = null;
    ui.collection.disabled = true;
    ui.count.textContent = "";
    renderNoCollections();
    return;
  }
  ui.collection.disabled = false;
  const names = state.collections.map((c) => c.name);
  const pick = [preferred, localStorage.getItem(COLLECTION_STORE), "default"].find((n) => n && names.includes(n));
  await selectCollection(pick || names[0], { keepQuery: true });
}

export async function selectCollection(name, { keepQuery = false } = {}) {
  state.collection = name;
  ui.collection.value = name;
  localStorage.setItem(COLLECTION_STORE, name);
  const info = state.collections.find((c) => c.name === name);
  setCount(info ? info.count : 0);
  if (!keepQuery) {
    // Ids and fields belong to one collection: a "like" query or filters don't carry over.
    if (state.query?.kind === "like") state.query = null;
    state.filters = [];
  }
  await loadFields();
  renderFilters();
  await run();
}

export function setCount(n) {
  state.count = n;
  ui.count.textContent = plural(n, "image");
}

export async function refreshCount() {
  try {
    const info = await api(colPath());
    setCount(info.count);
  } catch {
    // The count is a nicety; the gallery shows any real error.
  }
}

export async function loadFields() {
  try {
    const data = await api(`${colPath()}/fields`);
    state.fields = data.fields || [];
  } catch (err) {
    state.fields = [];
    showError(err, "Could not load filterable fields");
  }
}

export function renderNoCollections() {
  ui.gallery.replaceChildren();
  ui.status.textContent = "";
  ui.loadMore.hidden = true;
  const input = el("input", { type: "text", id: "new-collection", "aria-label": "New collection name",
    placeholder: "photos", required: true, pattern: "[A-Za-z0-9_\\-]+" });
  const form = el("form", {}, input, el("button", { type: "submit", class: "btn primary", text: "Create collection" }));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await api("api/collections", { method: "POST", json: { name: input.value.trim() } });
      await loadCollections(input.value.trim());
    } catch (err) {
      showError(err, "Could not create the collection");
    }
  });
  ui.empty.replaceChildren(
    el("h2", { text: "No collections yet" }),
    el("p", {}, "Create one here, or index a folder from a terminal with ", el("code", { text: "imgfind index PATH" }), "."),
    form,
  );
  ui.empty.hidden = false;
}
