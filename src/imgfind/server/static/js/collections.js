// Collections: the picker, counts, the field catalog behind the filter picker, and
// creating (with a model) and dropping (after typing its name) a collection.

import { api, colPath } from "./api.js";
import { $, el, plural } from "./dom.js";
import { renderFilters } from "./filters.js";
import { confirmDialog, showBanner, showError, toast } from "./notify.js";
import { run } from "./search.js";
import { COLLECTION_STORE, state, ui } from "./state.js";

// ---------------------------------------------------------------- collections

export async function loadCollections(preferred, { keepQuery = false, push = true } = {}) {
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
  await selectCollection(pick || names[0], { keepQuery, push });
}

export async function selectCollection(name, { keepQuery = false, push = true } = {}) {
  state.collection = name;
  ui.collection.value = name;
  localStorage.setItem(COLLECTION_STORE, name);
  const info = state.collections.find((c) => c.name === name);
  setCount(info ? info.count : 0);
  if (!keepQuery) {
    // Ids and fields belong to one collection: a "like" query or filters don't carry over.
    if (state.query?.kind === "like") state.query = null;
    state.pos = [];
    state.neg = [];
    state.filters = [];
    state.offset = 0;
  }
  await loadFields();
  renderFilters();
  await run({ push });   // no-op on the duplicates screen, which its caller shows
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

/** Every filterable field of the collection, with its type and how many items have it. */
export async function loadFields() {
  try {
    const data = await api(`${colPath()}/catalog`);
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

/** Reloads the field catalog after a change, so new keys can be filtered on at once. */
export async function refreshCatalog() {
  if (!state.collection) return;
  await loadFields();
  renderFilters();
}

// ---------------------------------------------------------------- create and drop

export async function openCreate() {
  $("#create-form").reset();
  $("#create-error").hidden = true;
  const models = $("#create-models");
  try {
    const cfg = await api("api/gallery/config");
    models.replaceChildren(...(cfg.models || []).map((m) => el("option", { value: m })));
    $("#create-model").placeholder = cfg.default_model ? `${cfg.default_model} (the server's default)` : "the server's default";
  } catch {
    models.replaceChildren();
  }
  ui.createView.showModal();
  $("#create-name").focus();
}

$("#create-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const name = $("#create-name").value.trim();
  const model = $("#create-model").value.trim();
  const err = $("#create-error");
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(name)) {
    err.textContent = "A name is 1 to 64 letters, digits, “-” or “_”.";
    err.hidden = false;
    return;
  }
  try {
    const body = model ? { name, model } : { name };
    if ($("#create-ocr").checked) body.ocr = true;
    await api("api/collections", { method: "POST", json: body });
  } catch (error) {
    err.textContent = error.message;
    err.hidden = false;
    return;
  }
  ui.createView.close();
  toast(`Collection “${name}” created.`);
  await loadCollections(name);
});

export async function dropCollection() {
  const name = state.collection;
  if (!name) return;
  const ok = await confirmDialog(`Drop the collection “${name}”?`,
    `Its ${plural(state.count, "image")} and everything imgfind stored for them are deleted. ` +
    "Original files on disk are not touched. This cannot be undone.", "Drop collection", name);
  if (!ok) return;
  try {
    await api(colPath(), { method: "DELETE" });
  } catch (err) {
    showError(err, `Could not drop ${name}`);
    return;
  }
  toast(`Collection “${name}” dropped.`);
  localStorage.removeItem(COLLECTION_STORE);
  await loadCollections();
}
