// The view controls above the grid: order (best match, newest or oldest taken,
// recently or first added), the minimum score of a search, day/month grouping, and a
// jump to a month of the timeline.

import { api, colPath } from "./api.js";
import { $ } from "./dom.js";
import { buildWhere } from "./filters.js";
import { groupBy, setGroupBy } from "./gallery.js";
import { effectiveSort, isSearch, listingSorted, run } from "./search.js";
import { state, ui } from "./state.js";

const SORTS = [
  ["score", "Best match"],
  ["-taken", "Newest first"],
  ["taken", "Oldest first"],
  ["-added", "Recently added"],
  ["added", "First added"],
];

/** Shows the controls that fit the view and sets them from the state. */
export function renderTimelineControls() {
  const search = isSearch();
  const sort = effectiveSort();
  const sorted = search || listingSorted();
  ui.sort.replaceChildren(...(sorted
    ? SORTS.filter(([v]) => search || v !== "score").map(([v, label]) => new Option(label, v, false, v === sort))
    : [new Option("As added", sort, true, true)]));
  ui.sort.value = sort;
  ui.sort.disabled = !sorted;
  ui.sort.title = sorted ? "" : "This server lists items in the order they were added";
  $("#min-score-wrap").hidden = !search;
  ui.minScore.value = state.minScore === null ? "" : String(state.minScore);
  const dated = sort !== "score";
  $("#group-wrap").hidden = !dated;
  ui.groupBy.value = groupBy();
  $("#jump-wrap").hidden = !(dated && !search && listingSorted());
}

ui.sort.addEventListener("change", () => {
  const search = isSearch();
  // The default order of each mode is kept out of the URL.
  state.sort = ui.sort.value === (search ? "score" : "-taken") ? "" : ui.sort.value;
  state.offset = 0;
  run();
});

function readMinScore() {
  const raw = ui.minScore.value.trim();
  const msg = $("#min-score-error");
  if (raw === "") { msg.hidden = true; return { ok: true, value: null }; }
  const v = Number(raw);
  if (!Number.isFinite(v) || v < -1 || v > 1) {
    msg.textContent = "The minimum score must be a number from -1 to 1.";
    msg.hidden = false;
    return { ok: false };
  }
  msg.hidden = true;
  return { ok: true, value: v };
}

ui.minScore.addEventListener("change", () => {
  const { ok, value } = readMinScore();
  if (!ok || value === state.minScore) return;
  state.minScore = value;
  run();
});

ui.groupBy.addEventListener("change", () => setGroupBy(ui.groupBy.value));

/** The filter for items that come before ``boundary`` (an ISO date) in the current order. */
function beforeBoundary(boundary, sort) {
  const desc = sort.startsWith("-");
  const cmp = desc ? { $gte: boundary } : { $lt: boundary };
  if (sort.endsWith("added")) return { added: cmp };
  // Items without a date taken sort by the date they were added.
  return { $or: [{ taken: cmp }, { $and: [{ taken: { $exists: false } }, { added: cmp }] }] };
}

/** Opens the timeline at a month: the listing restarts at the first item of that month. */
export async function jumpTo(month) {
  const m = /^(\d{4})-(\d{2})$/.exec(month || "");
  if (!m) return;
  const sort = effectiveSort();
  const year = Number(m[1]), mon = Number(m[2]);
  // Newest first starts a month after its last day; oldest first at its first day.
  const boundary = sort.startsWith("-")
    ? (mon === 12 ? `${year + 1}-01-01` : `${year}-${String(mon + 1).padStart(2, "0")}-01`)
    : `${year}-${String(mon).padStart(2, "0")}-01`;
  const user = buildWhere();
  const where = user ? { $and: [user, beforeBoundary(boundary, sort)] } : beforeBoundary(boundary, sort);
  const params = new URLSearchParams({ limit: 0, where: JSON.stringify(where) });
  const data = await api(`${colPath()}/items?${params}`);
  state.offset = Math.min(data.total ?? 0, Math.max(0, state.total - 1));
  await run();
  ui.gallery.querySelector(".card")?.focus({ preventScroll: true });
  window.scrollTo({ top: 0 });
}

// Typing a month can fire "change" twice; one jump per month at a time.
let jumping = null;
ui.jump.addEventListener("change", () => {
  if (jumping === ui.jump.value) return;
  jumping = ui.jump.value;
  jumpTo(ui.jump.value).finally(() => { jumping = null; });
});
ui.newer.addEventListener("click", () => {
  state.offset = 0;
  run();
});
