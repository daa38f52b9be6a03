// Changes to items: delete one or many, edit tags and album of many, download many as
// a ZIP. Each asks the server once and then updates the page in place.

import { api, authHeaders, colPath, errorFrom, itemPath } from "./api.js";
import { refreshCatalog } from "./collections.js";
import { $, displayName, el, plural } from "./dom.js";
import { renderResults } from "./gallery.js";
import { confirmDialog, showError, toast } from "./notify.js";
import { isSearch } from "./search.js";
import { state, ui } from "./state.js";
import { closeItem, showItem } from "./viewer.js";

function dropFromResults(ids) {
  const gone = new Set(ids);
  const focusIndex = state.results.findIndex((r) => gone.has(r.item.id));
  state.results = state.results.filter((r) => !gone.has(r.item.id));
  for (const id of ids) state.selected.delete(id);
  if (!isSearch()) state.total = Math.max(0, state.total - ids.length);
  state.count = Math.max(0, state.count - ids.length);
  ui.count.textContent = plural(state.count, "image");
  renderResults({ append: false, newResults: state.results });
  return focusIndex;
}

function focusCard(index) {
  const r = state.results[Math.min(index, state.results.length - 1)];
  if (r) ui.gallery.querySelector(`.card[data-id="${CSS.escape(r.item.id)}"]`)?.focus();
}

export async function deleteItem(item) {
  const name = displayName(item);
  const ok = await confirmDialog(`Delete “${name}”?`, item.stored
    ? `It is removed from “${state.collection}”, with the copy imgfind stored. This cannot be undone.`
    : `It is removed from “${state.collection}”. The original file on disk is not touched.`);
  if (!ok) return;
  try {
    await api(itemPath(item.id), { method: "DELETE" });
  } catch (err) {
    showError(err, `Could not delete ${name}`);
    return;
  }
  const index = dropFromResults([item.id]);
  if (ui.itemView.open) {
    if (state.results.length) showItem(Math.min(index, state.results.length - 1));
    else closeItem();
  } else {
    focusCard(index);
  }
  toast(`${name} was deleted.`);
}

/** Deletes every selected item after one confirmation; per-item failures are reported. */
export async function deleteSelected() {
  const ids = [...state.selected];
  if (!ids.length) return;
  const ok = await confirmDialog(`Delete ${plural(ids.length, "image")}?`,
    `They are removed from “${state.collection}”. Copies imgfind stored are deleted too; ` +
    "original files on disk are not touched. This cannot be undone.");
  if (!ok) return;
  let data;
  try {
    data = await api(`${colPath()}/items/delete`, { method: "POST", json: { ids } });
  } catch (err) {
    showError(err, "Could not delete the selection");
    return;
  }
  const results = data.results || [];
  const done = results.filter((r) => r.ok !== false && !r.error).map((r) => r.id);
  const failed = results.length - done.length;
  const index = dropFromResults(done);
  focusCard(index);
  toast(`${plural(done.length, "image")} deleted.`, failed
    ? { title: `${plural(failed, "image")} could not be deleted`, error: true } : {});
  refreshCatalog();
}

/** Sends one edit (tags to add and remove, an album to set or clear) for all selected items. */
export async function editSelected({ addTags = [], removeTags = [], album }) {
  const ids = [...state.selected];
  const body = { ids, add_tags: addTags, remove_tags: removeTags };
  if (album !== undefined) body.set = album === null ? {} : { album };
  if (album === null) body.unset = ["album"];
  const data = await api(`${colPath()}/items/metadata`, { method: "POST", json: body });
  const byId = new Map((data.items || []).map((it) => [it.id, it]));
  for (const r of state.results) {
    const it = byId.get(r.item.id);
    if (it) r.item = it;
  }
  refreshCatalog();
  return data;
}

/** Downloads the selected originals as one ZIP file. */
export async function downloadSelected() {
  const ids = [...state.selected];
  if (!ids.length) return;
  const btn = $("#sel-download");
  btn.setAttribute("aria-busy", "true");
  try {
    const res = await fetch(`${colPath()}/items/zip`, {
      method: "POST", headers: { ...authHeaders(), "Content-Type": "application/json" },
      body: JSON.stringify({ ids }),
    });
    if (!res.ok) throw errorFrom(res.status, await res.json().catch(() => null), res.statusText);
    const blob = await res.blob();
    const url = URL.createObjectURL(blob);
    const a = el("a", { href: url, download: `${state.collection}-${ids.length}.zip` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
    toast(`${plural(ids.length, "image")} packed into a ZIP file.`, { title: "Download ready" });
  } catch (err) {
    showError(err, "Could not download the selection");
  } finally {
    btn.removeAttribute("aria-busy");
  }
}
