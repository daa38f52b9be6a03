// The results grid: cards, loading state, empty states and card actions.

import { api, itemPath, thumbUrl } from "./api.js";
import { setCount } from "./collections.js";
import { $, BROKEN_IMAGE, displayName, el, icon, plural } from "./dom.js";
import { buildWhere, clearFilters } from "./filters.js";
import { confirmDialog, showError, toast } from "./notify.js";
import { run, searchLike, setQuery } from "./search.js";
import { PAGE, state, ui } from "./state.js";
import { openUpload } from "./upload.js";
import { closeItem, openItem, showItem } from "./viewer.js";

export function showLoading() {
  ui.empty.hidden = true;
  ui.loadMore.hidden = true;
  ui.gallery.setAttribute("aria-busy", "true");
  const n = Math.min(state.query ? Number(ui.k.value) : PAGE, 12);
  ui.gallery.replaceChildren(...Array.from({ length: n }, () =>
    el("div", { class: "card skeleton", "aria-hidden": "true" }, el("div", { class: "thumb" }), el("div", { class: "line" }))));
  ui.status.textContent = state.query ? "Searching…" : "Loading…";
}

export function renderChip() {
  const q = state.query;
  if (!q || q.kind === "text") { ui.chip.hidden = true; ui.chip.replaceChildren(); return; }
  const src = q.kind === "image" ? q.url : thumbUrl(q.id);
  const label = q.kind === "image" ? (q.file.name || "pasted image") : q.name || q.id;
  const clear = el("button", { type: "button", class: "icon-btn", "aria-label": "Clear image query", title: "Clear" }, icon("close"));
  clear.addEventListener("click", () => { setQuery(null); run(); });
  ui.chip.replaceChildren(el("img", { src, alt: "" }), el("span", {}, "Similar to ", el("strong", { text: label })), clear);
  ui.chip.hidden = false;
}

export function renderResults({ append, newResults, tookMs }) {
  ui.gallery.removeAttribute("aria-busy");
  const cards = newResults.map((r, i) => card(r, append ? state.results.length - newResults.length + i : i));
  if (append) ui.gallery.append(...cards);
  else ui.gallery.replaceChildren(...cards);

  const filtered = buildWhere() !== null;
  const q = state.query;
  const n = state.results.length;
  if (!q) {
    ui.status.replaceChildren(n < state.total
      ? el("span", {}, "Showing ", el("strong", { text: n.toLocaleString() }), ` of ${plural(state.total, "image")}`)
      : el("span", {}, el("strong", { text: plural(state.total, "image") })),
    filtered ? " matching the filters" : "");
  } else {
    const what = q.kind === "text" ? el("span", {}, " for “", el("strong", { text: q.text }), "”") : "";
    const took = typeof tookMs === "number" ? ` · ${tookMs < 10 ? tookMs.toFixed(1) : Math.round(tookMs)} ms` : "";
    ui.status.replaceChildren(`${plural(n, "result")}`, what, filtered ? " with filters" : "", took);
  }
  ui.loadMore.hidden = !!q || n >= state.total;
  renderEmpty(filtered);
}

export function renderEmpty(filtered) {
  if (state.results.length) { ui.empty.hidden = true; return; }
  const parts = [];
  if (filtered) {
    parts.push(el("h2", { text: "Nothing matches these filters" }),
      el("p", { text: "Loosen or remove a filter to see more images." }),
      el("button", { type: "button", class: "btn", text: "Clear filters", onclick: clearFilters }));
  } else if (state.count === 0 || !state.query) {
    parts.push(el("h2", { text: "This collection is empty" }),
      el("p", {}, "No images yet — drop some here or run ", el("code", { text: "imgfind index PATH" }), "."),
      el("button", { type: "button", class: "btn primary", text: "Add images", onclick: () => openUpload() }));
  } else {
    parts.push(el("h2", { text: "No results" }), el("p", { text: "Try other words or another image." }));
  }
  ui.empty.replaceChildren(...parts);
  ui.empty.hidden = false;
  if (!filtered && !state.query) ui.status.textContent = "";
}

export function card(result, index) {
  const { item, score } = result;
  const name = displayName(item);
  const img = el("img", { src: thumbUrl(item.id), alt: name, loading: "lazy", decoding: "async" });
  img.addEventListener("load", () => img.classList.add("loaded"), { once: true });
  img.addEventListener("error", () => { img.src = BROKEN_IMAGE; img.classList.add("broken"); }, { once: true });
  const dims = [item.width && item.height ? `${item.width} × ${item.height}` : null, item.format].filter(Boolean).join(" · ");
  const scoreText = typeof score === "number" ? score.toFixed(3) : null;
  return el("article", {
    class: "card", tabindex: "0", "data-id": item.id, "data-index": index,
    "aria-label": scoreText ? `${name}, score ${scoreText}` : name,
  },
  el("div", { class: "thumb" }, img,
    scoreText ? el("span", { class: "score", title: "Similarity score (cosine, higher is closer)", text: scoreText }) : null,
    el("div", { class: "actions" },
      el("button", { type: "button", class: "icon-btn", "data-action": "similar", title: "Find similar", "aria-label": `Find images similar to ${name}` }, icon("similar")),
      el("button", { type: "button", class: "icon-btn", "data-action": "open", title: "Open", "aria-label": `Open ${name}` }, icon("open")),
      el("button", { type: "button", class: "icon-btn del", "data-action": "delete", title: "Delete", "aria-label": `Delete ${name}` }, icon("trash")))),
  el("div", { class: "body" },
    el("div", { class: "name", title: item.source, text: name }),
    dims ? el("div", { class: "dims", text: dims }) : null));
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
  const index = state.results.findIndex((r) => r.item.id === item.id);
  if (index >= 0) state.results.splice(index, 1);
  if (!state.query) state.total = Math.max(0, state.total - 1);
  setCount(Math.max(0, state.count - 1));
  if (ui.itemView.open) {
    if (state.results.length) showItem(Math.min(index, state.results.length - 1));
    else closeItem();
  }
  const node = ui.gallery.querySelector(`.card[data-id="${CSS.escape(item.id)}"]`);
  const next = node?.nextElementSibling || node?.previousElementSibling;
  renderResults({ append: false, newResults: state.results, tookMs: undefined });
  if (!ui.itemView.open && next) ui.gallery.querySelector(`.card[data-id="${CSS.escape(next.dataset.id)}"]`)?.focus();
  toast(`${name} was deleted.`);
}

// ---------------------------------------------------------------- gallery events

ui.gallery.addEventListener("click", (e) => {
  const cardNode = e.target.closest(".card:not(.skeleton)");
  if (!cardNode) return;
  const index = Number(cardNode.dataset.index);
  const r = state.results[index];
  if (!r) return;
  const action = e.target.closest("[data-action]")?.dataset.action;
  if (action === "similar") searchLike(r.item);
  else if (action === "delete") deleteItem(r.item);
  else openItem(index);
});

ui.gallery.addEventListener("keydown", (e) => {
  const cardNode = e.target.closest(".card");
  if (!cardNode || e.target !== cardNode) return;
  const index = Number(cardNode.dataset.index);
  if (e.key === "Enter" || e.key === " ") { e.preventDefault(); openItem(index); }
  else if (e.key === "Delete") { e.preventDefault(); deleteItem(state.results[index].item); }
});

ui.loadMore.addEventListener("click", () => run({ append: true }));
