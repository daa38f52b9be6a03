// From a URL to the page: the first load and every Back/Forward step set the state
// from the URL, run the query when what it shows changed, and open or close the item.

import { loadCollections, selectCollection } from "./collections.js";
import { hideDuplicates, showDuplicates } from "./duplicates.js";
import { filtersFromUrl, renderFilters } from "./filters.js";
import { queryKey, readUrl, urlFor } from "./history.js";
import { run, setQuery } from "./search.js";
import { state, ui } from "./state.js";
import { syncItem } from "./viewer.js";

/** Sets the query part of the state from a URL view (not the collection, not the item). */
function applyQuery(v, entry) {
  const image = entry?.image;
  if (v.q) setQuery({ kind: "text", text: v.q });
  else if (v.like) setQuery({ kind: "like", id: v.like, name: v.like });
  else if (v.img && image instanceof File) setQuery({ kind: "image", file: image, url: URL.createObjectURL(image) });
  else setQuery(null);
  ui.q.value = v.q || "";
  state.pos = v.pos.map((id) => ({ id, name: id }));
  state.neg = v.neg.map((id) => ({ id, name: id }));
  state.filters = filtersFromUrl(v.filters);
  state.sort = v.sort;
  state.minScore = v.min;
  state.offset = 0;
  state.view = v.view;
}

async function showView(push) {
  if (state.view === "duplicates") {
    await showDuplicates({ push });
  } else {
    hideDuplicates();
    await run({ push });
  }
}

/** Goes to the screen named (gallery or duplicates): a history entry. */
export async function goTo(view) {
  state.view = view;
  await showView(true);
}

/** The first load: the URL (a shared link, a reload) says what to show. */
export async function start() {
  const v = readUrl();
  applyQuery(v, history.state);
  await loadCollections(v.c, { keepQuery: true, push: false });
  if (!state.collection) return;
  if (state.view === "duplicates") await showView(false);
  if (v.item) syncItem(v.item);
}

window.addEventListener("popstate", async (e) => {
  const v = readUrl();
  const current = readUrl(urlFor());
  if (queryKey(v) !== queryKey(current)) {
    applyQuery(v, e.state);
    renderFilters();
    if (v.c && v.c !== state.collection) {
      await selectCollection(v.c, { keepQuery: true, push: false });   // runs the gallery
      if (state.view === "duplicates") await showView(false);
    } else {
      await showView(false);
    }
  }
  syncItem(v.item);
});
