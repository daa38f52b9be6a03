// The view in the URL. Every change of what is shown (search, filters, sort, threshold,
// examples, open item, screen) is a browser history entry, so Back and Forward walk
// through them and a copied link restores the view. The URL lives in the hash, so the
// server serves one page for every view.

import { state } from "./state.js";

const LIST = (s) => (s ? s.split(",").filter(Boolean) : []);

/** The view a URL describes: {c, q, like, pos, neg, f, sort, min, item, view, img}. */
export function readUrl(hash = location.hash) {
  const p = new URLSearchParams(hash.slice(1));
  let filters = [];
  try { filters = JSON.parse(p.get("f") || "[]"); } catch { filters = []; }
  const min = p.get("min");
  return {
    c: p.get("c"), q: p.get("q"), like: p.get("like"), img: p.get("img"),
    pos: LIST(p.get("pos")), neg: LIST(p.get("neg")),
    filters: Array.isArray(filters) ? filters : [],
    sort: p.get("sort") || "", min: min !== null && min !== "" && Number.isFinite(Number(min)) ? Number(min) : null,
    item: p.get("item"), view: p.get("view") === "duplicates" ? "duplicates" : "gallery",
  };
}

/** The hash for the current state; ``withItem: false`` leaves the open item out. */
export function urlFor({ withItem = true } = {}) {
  const p = new URLSearchParams();
  if (state.collection) p.set("c", state.collection);
  if (state.view !== "gallery") p.set("view", state.view);
  if (state.query?.kind === "text") p.set("q", state.query.text);
  if (state.query?.kind === "like") p.set("like", state.query.id);
  // An uploaded query image cannot live in a URL; its name marks the entry, and the
  // file itself rides in history.state (Files survive structured cloning).
  if (state.query?.kind === "image") p.set("img", state.query.file.name || "image");
  if (state.pos.length) p.set("pos", state.pos.map((x) => x.id).join(","));
  if (state.neg.length) p.set("neg", state.neg.map((x) => x.id).join(","));
  const f = state.filters.filter((x) => x.key).map((x) => [x.key, x.op, x.value]);
  if (f.length) p.set("f", JSON.stringify(f));
  if (state.sort) p.set("sort", state.sort);
  if (state.minScore !== null) p.set("min", String(state.minScore));
  if (withItem && state.item) p.set("item", state.item.id);
  return "#" + p.toString();
}

function entryState() {
  return state.query?.kind === "image" ? { image: state.query.file } : {};
}

/** Records the current state: a new history entry when what is shown changed (``push``),
 * else an in-place update (e.g. stepping through items, or the first load). */
export function record({ push = true } = {}) {
  const hash = urlFor();
  if (hash === location.hash) return;
  if (push) history.pushState(entryState(), "", hash);
  else history.replaceState(entryState(), "", hash);
}

/** A key for what a query shows, to tell whether a history step needs a new query. */
export function queryKey(view) {
  const { item, ...rest } = view;  // eslint-disable-line no-unused-vars
  return JSON.stringify(rest);
}
