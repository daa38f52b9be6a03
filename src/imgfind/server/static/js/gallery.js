// The results grid: a timeline grouped by day or month with sticky headers when the
// order is by date, scored cards for searches, the query chips, empty states and
// infinite scroll. Card clicks and keys are handled in select.js.

import { thumbUrl } from "./api.js";
import { BROKEN_IMAGE, displayName, el, icon, itemDate, plural } from "./dom.js";
import { buildWhere, clearFilters } from "./filters.js";
import { effectiveSort, isSearch, loadMore, removeExample, run, setQuery } from "./search.js";
import { renderSelection } from "./select.js";
import { PAGE, state, ui } from "./state.js";
import { renderTimelineControls } from "./timeline.js";
import { openUpload } from "./upload.js";

const GROUP_STORE = "imgfind.groupBy";

export function groupBy() {
  return localStorage.getItem(GROUP_STORE) === "month" ? "month" : "day";
}

export function setGroupBy(value) {
  localStorage.setItem(GROUP_STORE, value);
  renderResults({ append: false, newResults: state.results });
}

export function showLoading() {
  ui.empty.hidden = true;
  ui.loadMore.hidden = true;
  ui.gallery.setAttribute("aria-busy", "true");
  const n = Math.min(isSearch() ? Number(ui.k.value) : PAGE, 12);
  ui.gallery.replaceChildren(...Array.from({ length: n }, () =>
    el("div", { class: "card skeleton", "aria-hidden": "true" }, el("div", { class: "thumb" }), el("div", { class: "line" }))));
  ui.status.textContent = isSearch() ? "Searching…" : "Loading…";
}

function chip(src, label, title, onRemove, kind) {
  const clear = el("button", { type: "button", class: "icon-btn", "aria-label": `Remove ${title}`, title: "Remove" }, icon("close"));
  clear.addEventListener("click", onRemove);
  return el("span", { class: `chip ${kind}`, title },
    src ? el("img", { src, alt: "" }) : null, el("span", {}, label), clear);
}

/** The query's image or item ("Similar to …") and its more/less-like examples as chips. */
export function renderChip() {
  const q = state.query;
  if (!q || q.kind === "text") {
    ui.chip.hidden = true;
    ui.chip.replaceChildren();
  } else {
    const src = q.kind === "image" ? q.url : thumbUrl(q.id);
    const label = q.kind === "image" ? (q.file.name || "pasted image") : q.name || q.id;
    const clear = el("button", { type: "button", class: "icon-btn", "aria-label": "Clear image query", title: "Clear" }, icon("close"));
    clear.addEventListener("click", () => { setQuery(null); run(); });
    ui.chip.replaceChildren(el("img", { src, alt: "" }), el("span", {}, "Similar to ", el("strong", { text: label })), clear);
    ui.chip.hidden = false;
  }
  const examples = [
    ...state.pos.map((x) => chip(thumbUrl(x.id), el("span", {}, "More like ", el("strong", { text: x.name })),
      `more like ${x.name}`, () => removeExample(x.id), "pos")),
    ...state.neg.map((x) => chip(thumbUrl(x.id), el("span", {}, "Less like ", el("strong", { text: x.name })),
      `less like ${x.name}`, () => removeExample(x.id), "neg")),
  ];
  ui.chips.replaceChildren(...examples);
  ui.chips.hidden = examples.length === 0;
}

function groupKey(date) {
  if (!date) return { key: "none", label: "No date" };
  const mode = groupBy();
  const key = mode === "month"
    ? `${date.getFullYear()}-${String(date.getMonth() + 1).padStart(2, "0")}`
    : `${date.getFullYear()}-${String(date.getMonth() + 1).padStart(2, "0")}-${String(date.getDate()).padStart(2, "0")}`;
  const label = mode === "month"
    ? date.toLocaleDateString(undefined, { month: "long", year: "numeric" })
    : date.toLocaleDateString(undefined, { weekday: "short", day: "numeric", month: "long", year: "numeric" });
  return { key, label };
}

/** Whether the gallery is a timeline: the order is by date, so dates head groups. */
export function isTimeline() {
  return effectiveSort() !== "score";
}

function nodesFor(results, startIndex) {
  const out = [];
  const timeline = isTimeline();
  const byAdded = effectiveSort().endsWith("added");
  let last = startIndex > 0 ? ui.gallery.querySelector(".group-head:last-of-type")?.dataset.key : null;
  results.forEach((r, i) => {
    if (timeline) {
      const date = byAdded ? itemDate({ added: r.item.added }) : itemDate(r.item);
      const { key, label } = groupKey(date);
      if (key !== last) {
        out.push(el("h2", { class: "group-head", "data-key": key, id: `group-${key}` }, label));
        last = key;
      }
    }
    out.push(card(r, startIndex + i));
  });
  return out;
}

export function renderResults({ append, newResults, tookMs }) {
  ui.gallery.removeAttribute("aria-busy");
  const start = append ? state.results.length - newResults.length : 0;
  const nodes = nodesFor(newResults, start);
  if (append) ui.gallery.append(...nodes);
  else ui.gallery.replaceChildren(...nodes);
  ui.gallery.classList.toggle("timeline", isTimeline());

  const filtered = buildWhere() !== null;
  const q = state.query;
  const n = state.results.length;
  if (!isSearch()) {
    const shown = state.offset ? `${(state.offset + 1).toLocaleString()}–${(state.offset + n).toLocaleString()}` : n.toLocaleString();
    ui.status.replaceChildren(n < state.total || state.offset
      ? el("span", {}, "Showing ", el("strong", { text: shown }), ` of ${plural(state.total, "image")}`)
      : el("span", {}, el("strong", { text: plural(state.total, "image") })),
    filtered ? " matching the filters" : "");
  } else {
    const what = q?.kind === "text" ? el("span", {}, " for “", el("strong", { text: q.text }), "”") : "";
    const took = typeof tookMs === "number" ? ` · ${tookMs < 10 ? tookMs.toFixed(1) : Math.round(tookMs)} ms` : "";
    const more = state.exhausted ? "" : "+";
    const min = state.minScore !== null ? ` scoring ≥ ${state.minScore}` : "";
    ui.status.replaceChildren(`${plural(n, "result")}${more}`, what, min, filtered ? " with filters" : "", took);
  }
  ui.loadMore.hidden = state.exhausted;
  ui.newer.hidden = !(state.offset > 0 && !isSearch());
  renderEmpty(filtered);
  renderSelection();
  renderTimelineControls();
}

export function renderEmpty(filtered) {
  if (state.results.length) { ui.empty.hidden = true; return; }
  const parts = [];
  if (filtered) {
    parts.push(el("h2", { text: "Nothing matches these filters" }),
      el("p", { text: "Loosen or remove a filter to see more images." }),
      el("button", { type: "button", class: "btn", text: "Clear filters", onclick: clearFilters }));
  } else if (state.count === 0 || !isSearch()) {
    parts.push(el("h2", { text: "This collection is empty" }),
      el("p", {}, "No images yet — drop some here or run ", el("code", { text: "imgfind index PATH" }), "."),
      el("button", { type: "button", class: "btn primary", text: "Add images", onclick: () => openUpload() }));
  } else if (state.minScore !== null) {
    parts.push(el("h2", { text: `No results scoring ${state.minScore} or more` }),
      el("p", { text: "Lower the minimum score to see weaker matches." }));
  } else {
    parts.push(el("h2", { text: "No results" }), el("p", { text: "Try other words or another image." }));
  }
  ui.empty.replaceChildren(...parts);
  ui.empty.hidden = false;
  if (!filtered && !isSearch()) ui.status.textContent = "";
}

function action(name, iconName, title, label, extra = "") {
  return el("button", { type: "button", class: `icon-btn ${extra}`.trim(), "data-action": name, title, "aria-label": label }, icon(iconName));
}

export function card(result, index) {
  const { item, score } = result;
  const name = displayName(item);
  const img = el("img", { src: thumbUrl(item.id), alt: name, loading: "lazy", decoding: "async" });
  img.addEventListener("load", () => img.classList.add("loaded"), { once: true });
  img.addEventListener("error", () => { img.src = BROKEN_IMAGE; img.classList.add("broken"); }, { once: true });
  const dims = [item.width && item.height ? `${item.width} × ${item.height}` : null, item.format].filter(Boolean).join(" · ");
  const scoreText = typeof score === "number" ? score.toFixed(3) : null;
  const selected = state.selected.has(item.id);
  return el("article", {
    class: `card${selected ? " selected" : ""}`, tabindex: "0", "data-id": item.id, "data-index": index,
    "aria-label": scoreText ? `${name}, score ${scoreText}` : name, "aria-selected": selected ? "true" : "false",
  },
  el("div", { class: "thumb" }, img,
    el("button", { type: "button", class: "select-box", "data-action": "select", "aria-label": `Select ${name}`,
      "aria-pressed": selected ? "true" : "false", title: "Select (Shift-click for a range)" }, icon("check")),
    scoreText ? el("span", { class: "score", title: "Similarity score (cosine, higher is closer)", text: scoreText }) : null,
    el("div", { class: "actions" },
      action("similar", "similar", "Find similar", `Find images similar to ${name}`),
      isSearch() ? action("more", "plus", "More like this", `More like ${name}`) : null,
      isSearch() ? action("less", "minus", "Less like this", `Less like ${name}`) : null,
      action("open", "open", "Open", `Open ${name}`),
      action("delete", "trash", "Delete", `Delete ${name}`, "del"))),
  el("div", { class: "body" },
    el("div", { class: "name", title: item.source, text: name }),
    dims ? el("div", { class: "dims", text: dims }) : null));
}

// Infinite scroll: scrolling near the end of the grid loads the next page. Only a
// scroll does (a short page shows the "Load more" button instead), so what a query
// first shows is what it asked for.
let ticking = false;
window.addEventListener("scroll", () => {
  if (ticking) return;
  ticking = true;
  requestAnimationFrame(() => {
    ticking = false;
    if (ui.loadMore.parentElement.getBoundingClientRect().top < innerHeight + 800) loadMore();
  });
}, { passive: true });
ui.loadMore.addEventListener("click", () => loadMore());
