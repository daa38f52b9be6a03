// Queries: browsing (a date-ordered timeline) and searches (text, image, an item, plus
// "more like this" / "less like this" examples), with sort, threshold, filters and
// infinite scroll, run against the REST API.

import { api, colPath } from "./api.js";
import { displayName } from "./dom.js";
import { buildWhere } from "./filters.js";
import { renderChip, renderResults, showLoading } from "./gallery.js";
import { record } from "./history.js";
import { showBanner, toast } from "./notify.js";
import { closeItemQuietly } from "./viewer.js";
import { PAGE, state, ui } from "./state.js";

/** Whether the gallery shows search hits (else it browses the collection). */
export function isSearch() {
  return !!(state.query || state.pos.length || state.neg.length);
}

/** The order in effect: the chosen one, else best match for searches and newest first
 * (by date taken, falling back to date added) for browsing. */
export function effectiveSort() {
  return state.sort || (isSearch() ? "score" : "-taken");
}

export function setQuery(query) {
  if (state.query?.kind === "image" && state.query !== query) URL.revokeObjectURL(state.query.url);
  state.query = query;
  if (query?.kind !== "text") ui.q.value = query ? "" : ui.q.value;
}

function searchBody(k, where) {
  const q = state.query;
  const body = q?.kind === "text" ? { text: q.text } : q?.kind === "like" ? { like: q.id } : {};
  body.k = k;
  if (where) body.where = where;
  // Only what differs from the server's defaults is sent, so a plain search stays plain.
  if (state.sort && state.sort !== "score") body.sort = state.sort;
  if (state.minScore !== null) body.min_score = state.minScore;
  if (state.pos.length) body.positive = state.pos.map((x) => ({ like: x.id }));
  if (state.neg.length) body.negative = state.neg.map((x) => ({ like: x.id }));
  return body;
}

async function fetchHits(k, where) {
  const q = state.query;
  if (q?.kind === "image") {
    const form = new FormData();
    form.append("file", q.file, q.file.name || "query.png");
    for (const [key, v] of Object.entries(searchBody(k, where))) {
      form.append(key, typeof v === "object" ? JSON.stringify(v) : String(v));
    }
    return api(`${colPath()}/search`, { method: "POST", form });
  }
  return api(`${colPath()}/search`, { method: "POST", json: searchBody(k, where) });
}

// Whether the server orders listings (GET items?sort=); one that answers "unknown
// query parameter 'sort'" lists in the order items were added, and the page says so.
let listSort = true;

async function fetchPage(offset, where) {
  const params = new URLSearchParams({ limit: PAGE, offset });
  if (where) params.set("where", JSON.stringify(where));
  if (listSort) {
    try {
      return await api(`${colPath()}/items?${params}&sort=${encodeURIComponent(effectiveSort())}`);
    } catch (err) {
      if (err.code !== "unknown_field" || !/'sort'/.test(err.message)) throw err;
      listSort = false;
    }
  }
  return api(`${colPath()}/items?${params}`);
}

/** Whether browsing is in the chosen date order (false: the server lists as added). */
export function listingSorted() {
  return listSort;
}

/** Runs the current query. ``append`` loads the next page (infinite scroll); ``push``
 * says whether a new query is a new history entry (false when history itself moved). */
export async function run({ append = false, push = true } = {}) {
  if (!state.collection || state.view !== "gallery") return;
  const seq = ++state.seq;
  const where = buildWhere();
  if (!append) {
    // Only a change of what is shown is a new history entry: an unfinished filter row,
    // or the same query again, updates the current entry instead.
    const key = JSON.stringify([state.collection, state.query?.kind, state.query?.text, state.query?.id,
      state.query?.file?.name, state.pos, state.neg, where, state.sort, state.minScore, state.offset]);
    if (key === state.lastKey) push = false;
    state.lastKey = key;
    state.exhausted = false;
    state.selected.clear();
    state.item = null;
    closeItemQuietly();   // the results it stepped through are being replaced
    record({ push });
  }
  renderChip();
  ui.banner.hidden = true;
  if (!append) showLoading();
  state.loading = true;
  ui.searchBtn.setAttribute("aria-busy", isSearch() ? "true" : "false");
  try {
    let results, total, tookMs;
    if (!isSearch()) {
      const offset = state.offset + (append ? state.results.length : 0);
      const data = await fetchPage(offset, where);
      results = (data.items || []).map((item) => ({ item }));
      total = data.total ?? results.length;
      state.exhausted = offset + results.length >= total || results.length < PAGE;
    } else {
      // Search hits have no offset: a longer list is asked for and its new tail shown.
      const first = Number(ui.k.value);
      const k = append ? state.results.length + PAGE : first;
      const data = await fetchHits(k, where);
      const seen = new Set(append ? state.results.map((r) => r.item.id) : []);
      const hits = data.hits || [];
      results = hits.filter((h) => !seen.has(h.item.id)).map((h) => ({ item: h.item, score: h.score }));
      state.exhausted = hits.length < k || results.length === 0;
      total = (append ? state.results.length : 0) + results.length;
      tookMs = data.took_ms;
    }
    if (seq !== state.seq) return;
    state.results = append ? state.results.concat(results) : results;
    state.total = total;
    renderResults({ append, newResults: results, tookMs });
  } catch (err) {
    if (seq !== state.seq) return;
    state.results = [];
    state.exhausted = true;
    ui.gallery.replaceChildren();
    ui.gallery.removeAttribute("aria-busy");
    ui.status.textContent = "";
    ui.loadMore.hidden = true;
    ui.empty.hidden = true;
    showBanner(err, isSearch() ? "Search failed" : "Could not load images");
  } finally {
    if (seq === state.seq) {
      state.loading = false;
      ui.searchBtn.setAttribute("aria-busy", "false");
    }
  }
}

/** Loads the next page when there is one and nothing is loading. */
export function loadMore() {
  if (state.loading || state.exhausted || !state.results.length) return;
  run({ append: true });
}

export function searchText(text) {
  text = text.trim();
  setQuery(text ? { kind: "text", text } : null);
  if (!text) { state.pos = []; state.neg = []; }
  state.offset = 0;
  run();
}

export function searchImage(file) {
  if (!file) return;
  if (file.type && !file.type.startsWith("image/") && !/\.(heic|heif|avif)$/i.test(file.name)) {
    toast(`${file.name} is not an image.`, { title: "Cannot search by this file", error: true });
    return;
  }
  setQuery({ kind: "image", file, url: URL.createObjectURL(file) });
  state.offset = 0;
  run();
}

export function searchLike(item) {
  setQuery({ kind: "like", id: item.id, name: displayName(item) });
  state.pos = [];
  state.neg = [];
  state.offset = 0;
  run();
  window.scrollTo({ top: 0, behavior: "smooth" });
}

/** "More like this" (``sign`` +1) or "less like this" (-1): the item joins the query as an
 * example, shown as a removable chip. */
export function addExample(item, sign) {
  const entry = { id: item.id, name: displayName(item) };
  state.pos = state.pos.filter((x) => x.id !== item.id);
  state.neg = state.neg.filter((x) => x.id !== item.id);
  if (sign > 0) state.pos.push(entry);
  else state.neg.push(entry);
  state.offset = 0;
  run();
}

export function removeExample(id) {
  state.pos = state.pos.filter((x) => x.id !== id);
  state.neg = state.neg.filter((x) => x.id !== id);
  if (state.query?.kind === "like" && state.query.id === id) setQuery(null);
  run();
}
