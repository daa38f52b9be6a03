// The duplicate review screen: groups of images that look the same, side by side with
// their tier (exact, near, similar) and scores. In each group one image is kept (the
// suggested one unless you pick another); "Keep this one" resolves one group, "Resolve
// all" every group. Each asks the server for a dry run first (POST duplicates/resolve),
// shows its count, and deletes only if that count still holds ("expect").

import { api, colPath, thumbUrl } from "./api.js";
import { refreshCount } from "./collections.js";
import { displayName, el, plural } from "./dom.js";
import { record } from "./history.js";
import { confirmDialog, showBanner, showError, toast } from "./notify.js";
import { state, ui } from "./state.js";

const TIERS = {
  exact: "Exact copies (same bytes)",
  near: "Same picture, edited",
  similar: "Same scene",
};

let groups = [];          // [{ids, tier, score, scores, keep, edits, items: Map}]
let shownAt = null;       // the threshold the groups on screen were found with
let seq = 0;              // answers to superseded requests are dropped

function normalise(g) {
  const tier = g.tier || (g.exact ? "exact" : "near");
  const keep = g.keep && g.ids.includes(g.keep) ? g.keep : g.ids[0];
  return { ...g, tier, keep, items: new Map() };
}

/** Shows the screen (it is a history entry, like any view). */
export async function showDuplicates({ push = true } = {}) {
  state.view = "duplicates";
  state.item = null;
  record({ push });
  document.body.dataset.view = "duplicates";
  const list = ui.dupList;
  list.replaceChildren(el("p", { class: "muted", text: "Looking for duplicates…" }));
  ui.dupStatus.textContent = "";
  const mine = ++seq;
  const threshold = ui.dupThreshold.value || "0.95";
  let found;
  try {
    const data = await api(`${colPath()}/duplicates?${new URLSearchParams({ threshold })}`);
    found = (data.groups || []).map(normalise);
    // The names and sizes of every image in a group, 500 per request.
    const ids = found.flatMap((g) => g.ids);
    for (let i = 0; i < ids.length; i += 500) {
      const where = JSON.stringify({ id: { $in: ids.slice(i, i + 500) } });
      const page = await api(`${colPath()}/items?${new URLSearchParams({ where, limit: 500 })}`);
      for (const it of page.items || []) found.find((g) => g.ids.includes(it.id))?.items.set(it.id, it);
    }
  } catch (err) {
    if (mine !== seq) return;
    list.replaceChildren();
    showBanner(err, "Could not look for duplicates");
    return;
  }
  if (mine !== seq) return;
  groups = found;
  shownAt = threshold;
  render();
}

export function hideDuplicates() {
  document.body.dataset.view = "gallery";
  state.view = "gallery";
}

function extra(g) {
  return g.ids.length - 1;
}

function render() {
  const n = groups.reduce((a, g) => a + extra(g), 0);
  ui.dupStatus.replaceChildren(groups.length
    ? el("span", {}, el("strong", { text: plural(groups.length, "group") }), ` · ${plural(n, "image")} could go`)
    : "No duplicates at this threshold.");
  ui.dupResolveAll.disabled = !groups.length;
  ui.dupList.replaceChildren(...groups.map((g, gi) => group(g, gi)));
}

function scoreOf(g, id) {
  if (g.scores && typeof g.scores === "object" && !Array.isArray(g.scores) && typeof g.scores[id] === "number") return g.scores[id];
  return null;
}

function group(g, gi) {
  const tiles = g.ids.map((id) => {
    const it = g.items.get(id);
    const name = it ? displayName(it) : id;
    const kept = id === g.keep;
    const s = scoreOf(g, id);
    const facts = it ? [it.width && it.height ? `${it.width} × ${it.height}` : null, it.format,
      it.file?.size ? `${Math.round(it.file.size / 1024)} KB` : null].filter(Boolean).join(" · ") : "";
    const edit = g.edits && !Array.isArray(g.edits) ? g.edits[id] : null;
    const radio = el("input", { type: "radio", name: `keep-${gi}`, value: id, checked: kept, "aria-label": `Keep ${name}` });
    // Choosing another one to keep repaints this group's tiles in place.
    radio.addEventListener("change", () => {
      g.keep = id;
      for (const tile of radio.closest(".dup-tiles").children) {
        const on = tile.dataset.id === id;
        tile.classList.toggle("kept", on);
        tile.querySelector(".dup-keep-label").textContent = on ? " Kept" : " Keep this one";
      }
    });
    return el("label", { class: `dup-tile${kept ? " kept" : ""}`, "data-id": id },
      el("img", { src: thumbUrl(id), alt: name, loading: "lazy" }),
      el("span", { class: "dup-name", text: name, title: it?.source || id }),
      el("span", { class: "muted small-text", text: facts }),
      edit ? el("span", { class: "dup-edit small-text", text: edit }) : null,
      s !== null ? el("span", { class: "score", text: s.toFixed(3) }) : null,
      el("span", { class: "dup-keep" }, radio, el("span", { class: "dup-keep-label", text: kept ? " Kept" : " Keep this one" })));
  });
  const resolve = el("button", { type: "button", class: "btn danger small", text: `Keep the selected one, delete ${plural(extra(g), "other")}` });
  resolve.addEventListener("click", () => resolveGroups([g]));
  return el("section", { class: "dup-group", "data-tier": g.tier, "aria-label": `Group ${gi + 1}` },
    el("header", {},
      el("span", { class: `tier ${g.tier}`, text: g.tier }),
      el("span", { class: "muted", text: `${TIERS[g.tier] || g.tier} · score ${Number(g.score).toFixed(3)}` }),
      resolve),
    el("div", { class: "dup-tiles" }, tiles));
}

async function resolveGroups(chosen) {
  const body = { groups: chosen.map((g) => ({ keep: g.keep, ids: g.ids })) };
  const url = `${colPath()}/duplicates/resolve`;
  let plan;
  try {
    plan = await api(url, { method: "POST", json: { ...body, dry_run: true } });
  } catch (err) {
    showError(err, "Could not plan the clean-up");
    return;
  }
  if (!plan.count) { toast("Nothing to delete in these groups."); return; }
  const n = plan.groups ?? chosen.length;
  const ok = await confirmDialog(`Delete ${plural(plan.count, "image")}?`,
    `${plural(n, "group")} keep${n === 1 ? "s" : ""} one image each; ` +
    `${plural(plan.count, "other")} ${plan.count === 1 ? "is" : "are"} deleted from “${state.collection}”. ` +
    "Original files on disk are not touched.");
  if (!ok) return;
  let done;
  try {
    done = await api(url, { method: "POST", json: { ...body, dry_run: false, expect: plan.count } });
  } catch (err) {
    showError(err, "Could not delete the duplicates");
    return;
  }
  const failed = (done.errors || []).length;
  groups = groups.filter((g) => !chosen.includes(g));
  render();
  refreshCount();
  toast(`${plural((done.delete || []).length, "duplicate")} deleted.`, failed
    ? { title: `${plural(failed, "image")} could not be deleted`, error: true } : {});
}

ui.dupResolveAll.addEventListener("click", () => resolveGroups(groups));
ui.dupThreshold.addEventListener("change", () => {
  if (ui.dupThreshold.value !== shownAt) showDuplicates({ push: false });
});
