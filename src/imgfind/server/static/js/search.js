// Queries: text, image and 'like' searches and browsing, run against the REST API.

import { api, colPath } from "./api.js";
import { $, displayName } from "./dom.js";
import { buildWhere } from "./filters.js";
import { renderChip, renderResults, showLoading } from "./gallery.js";
import { writeHash } from "./history.js";
import { showBanner, toast } from "./notify.js";
import { PAGE, state, ui } from "./state.js";

// ---------------------------------------------------------------- queries

export function setQuery(query) {
  if (state.query?.kind === "image" && state.query !== query) URL.revokeObjectURL(state.query.url);
  state.query = query;
  if (query?.kind !== "text") ui.q.value = query ? "" : ui.q.value;
}

export async function run({ append = false } = {}) {
  if (!state.collection) return;
  const seq = ++state.seq;
  const where = buildWhere();
  writeHash();
  renderChip();
  ui.banner.hidden = true;
  if (!append) showLoading();
  ui.searchBtn.setAttribute("aria-busy", state.query ? "true" : "false");
  try {
    let results, total, tookMs;
    if (!state.query) {
      const offset = append ? state.results.length : 0;
      const params = new URLSearchParams({ limit: PAGE, offset });
      if (where) params.set("where", JSON.stringify(where));
      const data = await api(`${colPath()}/items?${params}`);
      results = (data.items || []).map((item) => ({ item }));
      total = data.total ?? results.length;
    } else {
      const k = Number(ui.k.value);
      let data;
      if (state.query.kind === "image") {
        const form = new FormData();
        form.append("file", state.query.file, state.query.file.name || "query.png");
        form.append("k", String(k));
        if (where) form.append("where", JSON.stringify(where));
        data = await api(`${colPath()}/search`, { method: "POST", form });
      } else {
        const body = state.query.kind === "text" ? { text: state.query.text } : { like: state.query.id };
        body.k = k;
        if (where) body.where = where;
        data = await api(`${colPath()}/search`, { method: "POST", json: body });
      }
      results = (data.hits || []).map((h) => ({ item: h.item, score: h.score }));
      total = results.length;
      tookMs = data.took_ms;
    }
    if (seq !== state.seq) return;
    state.results = append ? state.results.concat(results) : results;
    state.total = total;
    renderResults({ append, newResults: results, tookMs });
  } catch (err) {
    if (seq !== state.seq) return;
    state.results = [];
    ui.gallery.replaceChildren();
    ui.gallery.removeAttribute("aria-busy");
    ui.status.textContent = "";
    ui.loadMore.hidden = true;
    ui.empty.hidden = true;
    showBanner(err, state.query ? "Search failed" : "Could not load images");
  } finally {
    if (seq === state.seq) ui.searchBtn.setAttribute("aria-busy", "false");
  }
}

export function searchText(text) {
  text = text.trim();
  setQuery(text ? { kind: "text", text } : null);
  run();
}

export function searchImage(file) {
  if (!file) return;
  if (file.type && !file.type.startsWith("image/") && !/\.(heic|heif|avif)$/i.test(file.name)) {
    toast(`${file.name} is not an image.`, { title: "Cannot search by this file", error: true });
    return;
  }
  setQuery({ kind: "image", file, url: URL.createObjectURL(file) });
  run();
}

export function searchLike(item) {
  setQuery({ kind: "like", id: item.id, name: displayName(item) });
  run();
  window.scrollTo({ top: 0, behavior: "smooth" });
}
