// The view in the URL: read on load, written after each query so a link restores it.

import { state } from "./state.js";

// ---------------------------------------------------------------- URL hash state

export function readHash() {
  const p = new URLSearchParams(location.hash.slice(1));
  let filters = [];
  try { filters = JSON.parse(p.get("f") || "[]"); } catch { filters = []; }
  return { c: p.get("c"), q: p.get("q"), like: p.get("like"), filters: Array.isArray(filters) ? filters : [] };
}

export function writeHash() {
  const p = new URLSearchParams();
  if (state.collection) p.set("c", state.collection);
  if (state.query?.kind === "text") p.set("q", state.query.text);
  if (state.query?.kind === "like") p.set("like", state.query.id);
  const f = state.filters.filter((x) => x.key).map((x) => [x.key, x.op, x.value]);
  if (f.length) p.set("f", JSON.stringify(f));
  const hash = "#" + p.toString();
  if (hash !== location.hash) history.replaceState(null, "", hash);
}
