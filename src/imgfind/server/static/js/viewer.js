// The item view: the full image with previous/next (buttons, arrow keys, swipe on touch
// screens), its details, and actions. Opening it is a history entry (Back closes it);
// stepping through items updates that entry in place.

import { api, imageUrl, itemPath, thumbUrl } from "./api.js";
import { renderItemDetails } from "./details.js";
import { $, displayName } from "./dom.js";
import { record } from "./history.js";
import { deleteItem } from "./items.js";
import { addExample, isSearch, searchLike } from "./search.js";
import { state, ui } from "./state.js";

let pushed = false;   // whether opening the view added the history entry we are on
let quiet = false;    // a close that must not touch history (history itself moved)

function show(item, index) {
  state.current = index;
  state.item = item;
  const name = displayName(item);
  $("#item-title").textContent = name;
  $("#item-source").textContent = item.source;
  const img = $("#item-image");
  img.alt = name;
  img.onerror = () => { img.onerror = null; img.src = thumbUrl(item.id); };  // e.g. HEIC the browser cannot show
  img.src = imageUrl(item.id);
  $("#item-open").href = imageUrl(item.id);
  $("#item-prev").hidden = index <= 0;
  $("#item-next").hidden = index < 0 || index >= state.results.length - 1;
  $("#item-more").hidden = !isSearch();
  $("#item-less").hidden = !isSearch();
  $("#item-position").textContent = index >= 0 ? `${index + 1} of ${state.results.length}` : "";
  renderItemDetails(item);
  if (!ui.itemView.open) ui.itemView.showModal();
}

/** Shows result ``index`` in the open view (prev/next): the URL follows, no new entry. */
export function showItem(index) {
  const r = state.results[index];
  if (!r) return;
  show(r.item, index);
  record({ push: false });
}

/** Opens the view on result ``index``: a new history entry. */
export function openItem(index) {
  const r = state.results[index];
  if (!r) return;
  show(r.item, index);
  record({ push: true });
  pushed = true;
  $("#item-close").focus();
}

/** Opens the view on item ``id`` named by a URL (it may not be among the results). */
export async function openItemById(id) {
  const index = state.results.findIndex((r) => r.item.id === id);
  if (index >= 0) { show(state.results[index].item, index); return; }
  try {
    show(await api(itemPath(id)), -1);
  } catch {
    state.item = null;
    record({ push: false });   // a link to an item that is gone opens the gallery
  }
}

/** Closes the view as people do (Escape, the close button, a click outside). */
export function closeItem() {
  if (ui.itemView.open) ui.itemView.close();
}

/** Closes the view because history moved or a new query starts: history is left alone. */
export function closeItemQuietly() {
  if (!ui.itemView.open) return;
  quiet = true;
  ui.itemView.close();
}

ui.itemView.addEventListener("close", () => {
  const r = state.results[state.current];
  if (r) ui.gallery.querySelector(`.card[data-id="${CSS.escape(r.item.id)}"]`)?.focus();
  $("#item-image").removeAttribute("src");
  const wasQuiet = quiet;
  quiet = false;
  if (wasQuiet) { pushed = false; return; }
  if (pushed) {
    // The entry was ours: going back removes it, so Forward reopens the item.
    pushed = false;
    history.back();
  } else {
    state.item = null;
    record({ push: false });
  }
});

/** Follows the URL after Back/Forward: opens or closes the view. */
export function syncItem(id) {
  pushed = false;
  if (!id) { state.item = null; closeItemQuietly(); return; }
  if (state.item?.id !== id || !ui.itemView.open) openItemById(id);
}

function step(delta) {
  const next = state.current + delta;
  if (state.current >= 0 && next >= 0 && next < state.results.length) showItem(next);
}

ui.itemView.addEventListener("keydown", (e) => {
  if (e.target.matches("input, textarea, select")) return;
  if (e.key === "ArrowLeft") { e.preventDefault(); step(-1); }
  if (e.key === "ArrowRight") { e.preventDefault(); step(+1); }
});

// Swipe on touch screens: a mostly horizontal stroke of 50 px or more steps.
let touch = null;
const media = $(".item-media");
media.addEventListener("touchstart", (e) => {
  if (e.touches.length === 1) touch = { x: e.touches[0].clientX, y: e.touches[0].clientY };
}, { passive: true });
media.addEventListener("touchend", (e) => {
  if (!touch) return;
  const t = e.changedTouches[0];
  const dx = t.clientX - touch.x, dy = t.clientY - touch.y;
  touch = null;
  if (Math.abs(dx) >= 50 && Math.abs(dx) > 1.5 * Math.abs(dy)) step(dx < 0 ? +1 : -1);
});

// A click on the backdrop (outside the dialog box) closes it.
ui.itemView.addEventListener("click", (e) => { if (e.target === ui.itemView) closeItem(); });
$("#item-close").addEventListener("click", closeItem);
$("#item-prev").addEventListener("click", () => step(-1));
$("#item-next").addEventListener("click", () => step(+1));

function fromView(run) {
  const item = state.item;
  if (!item) return;
  // The item entry stays in history: Back from the new results reopens this item.
  pushed = false;
  closeItemQuietly();
  run(item);
}

$("#item-similar").addEventListener("click", () => fromView(searchLike));
$("#item-more").addEventListener("click", () => fromView((it) => addExample(it, +1)));
$("#item-less").addEventListener("click", () => fromView((it) => addExample(it, -1)));
$("#item-delete").addEventListener("click", () => { if (state.item) deleteItem(state.item); });
