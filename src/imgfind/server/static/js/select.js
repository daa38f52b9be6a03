// Cards by mouse, touch and keyboard: open, select (click the tick, Shift-click for a
// range, Ctrl/Cmd-click to toggle, Space / Shift+arrows on the keyboard, Ctrl+A for all,
// Escape to clear) and the selection bar with its bulk actions.

import { $, el, plural } from "./dom.js";
import { deleteItem, deleteSelected, downloadSelected, editSelected } from "./items.js";
import { showError, toast } from "./notify.js";
import { addExample, searchLike } from "./search.js";
import { state, ui } from "./state.js";
import { openItem } from "./viewer.js";

const cardAt = (index) => ui.gallery.querySelector(`.card[data-index="${index}"]`);

function paint(index) {
  const r = state.results[index];
  const node = cardAt(index);
  if (!r || !node) return;
  const on = state.selected.has(r.item.id);
  node.classList.toggle("selected", on);
  node.setAttribute("aria-selected", on ? "true" : "false");
  node.querySelector(".select-box")?.setAttribute("aria-pressed", on ? "true" : "false");
}

function toggle(index, on) {
  const r = state.results[index];
  if (!r) return;
  const want = on ?? !state.selected.has(r.item.id);
  if (want) state.selected.add(r.item.id);
  else state.selected.delete(r.item.id);
  paint(index);
}

function selectRange(from, to) {
  const [a, b] = from <= to ? [from, to] : [to, from];
  for (let i = a; i <= b; i++) toggle(i, true);
}

export function clearSelection() {
  const had = state.selected.size;
  state.selected.clear();
  state.results.forEach((_, i) => paint(i));
  renderSelection();
  return had;
}

export function selectAll() {
  state.results.forEach((_, i) => toggle(i, true));
  renderSelection();
}

/** Shows the selection bar while anything is selected. */
export function renderSelection() {
  const n = state.selected.size;
  ui.selBar.hidden = n === 0;
  document.body.classList.toggle("selecting", n > 0);
  $("#sel-count").textContent = `${plural(n, "image")} selected`;
}

function pick(index, e) {
  if (e.shiftKey && state.anchor >= 0) selectRange(state.anchor, index);
  else toggle(index);
  state.anchor = index;
  renderSelection();
}

ui.gallery.addEventListener("click", (e) => {
  const cardNode = e.target.closest(".card:not(.skeleton)");
  if (!cardNode) return;
  const index = Number(cardNode.dataset.index);
  const r = state.results[index];
  if (!r) return;
  const action = e.target.closest("[data-action]")?.dataset.action;
  if (action === "select" || e.shiftKey || e.ctrlKey || e.metaKey || (state.selected.size && !action)) {
    e.preventDefault();
    pick(index, e);
  } else if (action === "similar") searchLike(r.item);
  else if (action === "more") addExample(r.item, +1);
  else if (action === "less") addExample(r.item, -1);
  else if (action === "delete") deleteItem(r.item);
  else openItem(index);
});

/** The card in the row above or below ``node``, nearest to it horizontally. */
function vertical(node, down) {
  const box = node.getBoundingClientRect();
  const cards = [...ui.gallery.querySelectorAll(".card:not(.skeleton)")];
  const rows = cards.map((c) => [c, c.getBoundingClientRect()])
    .filter(([, b]) => (down ? b.top > box.top + 4 : b.top < box.top - 4));
  if (!rows.length) return null;
  const rowTop = down ? Math.min(...rows.map(([, b]) => b.top)) : Math.max(...rows.map(([, b]) => b.top));
  const row = rows.filter(([, b]) => Math.abs(b.top - rowTop) < 4);
  row.sort((x, y) => Math.abs(x[1].left - box.left) - Math.abs(y[1].left - box.left));
  return row[0][0];
}

ui.gallery.addEventListener("keydown", (e) => {
  const cardNode = e.target.closest(".card");
  if (!cardNode || e.target !== cardNode) return;
  const index = Number(cardNode.dataset.index);
  const moves = { ArrowLeft: () => cardAt(index - 1), ArrowRight: () => cardAt(index + 1),
    ArrowUp: () => vertical(cardNode, false), ArrowDown: () => vertical(cardNode, true) };
  if (moves[e.key]) {
    const next = moves[e.key]();
    if (!next) return;
    e.preventDefault();
    if (e.shiftKey) {
      if (state.anchor < 0) state.anchor = index;
      toggle(index, true);
      selectRange(state.anchor, Number(next.dataset.index));
      renderSelection();
    }
    next.focus();
  } else if (e.key === "Enter") {
    e.preventDefault();
    openItem(index);
  } else if (e.key === " ") {
    e.preventDefault();
    pick(index, e);
  } else if ((e.key === "a" || e.key === "A") && (e.ctrlKey || e.metaKey)) {
    e.preventDefault();
    selectAll();
  } else if (e.key === "Escape" && state.selected.size) {
    e.preventDefault();
    clearSelection();
  } else if (e.key === "Delete") {
    e.preventDefault();
    if (state.selected.size) deleteSelected();
    else deleteItem(state.results[index].item);
  }
});

// ---------------------------------------------------------------- bulk edit dialog

const splitTags = (s) => s.split(",").map((t) => t.trim()).filter(Boolean);

function openEdit() {
  $("#edit-count").textContent = plural(state.selected.size, "image");
  $("#edit-form").reset();
  $("#edit-error").hidden = true;
  const albums = new Set(state.results.map((r) => r.item.metadata?.album).filter((a) => typeof a === "string"));
  $("#edit-albums").replaceChildren(...[...albums].map((a) => el("option", { value: a })));
  ui.editView.showModal();
  $("#edit-add").focus();
}

async function saveEdit(e) {
  e.preventDefault();
  const addTags = splitTags($("#edit-add").value);
  const removeTags = splitTags($("#edit-remove").value);
  const albumText = $("#edit-album").value.trim();
  const album = $("#edit-album-clear").checked ? null : albumText || undefined;
  if (!addTags.length && !removeTags.length && album === undefined) {
    $("#edit-error").textContent = "Nothing to change: add or remove a tag, or set an album.";
    $("#edit-error").hidden = false;
    return;
  }
  const btn = $("#edit-save");
  btn.setAttribute("aria-busy", "true");
  try {
    const data = await editSelected({ addTags, removeTags, album });
    ui.editView.close();
    const failed = (data.results || []).filter((r) => r.error).length;
    toast(`${plural(data.updated ?? 0, "image")} updated.`, failed
      ? { title: `${plural(failed, "image")} could not be changed`, error: true } : { title: "Saved" });
  } catch (err) {
    showError(err, "Could not change the selection");
  } finally {
    btn.removeAttribute("aria-busy");
  }
}

$("#edit-form").addEventListener("submit", saveEdit);
$("#sel-edit").addEventListener("click", openEdit);
$("#sel-delete").addEventListener("click", deleteSelected);
$("#sel-download").addEventListener("click", downloadSelected);
$("#sel-all").addEventListener("click", selectAll);
$("#sel-clear").addEventListener("click", clearSelection);
