// Filter rows (field, operator, value) and their translation into the REST `where` filter.

import { $, el, icon } from "./dom.js";
import { run } from "./search.js";
import { OPS, state, ui } from "./state.js";

// ---------------------------------------------------------------- filters

export function fieldInfo(key) {
  return state.fields.find((f) => f.key === key);
}

export function addFilterRow(filter = { key: state.fields[0]?.key || "", op: "$eq", value: "" }) {
  state.filters.push(filter);
  renderFilters();
  const rows = ui.filters.querySelectorAll(".filter");
  rows[rows.length - 1]?.querySelector(".f-key")?.focus();
}

export function renderFilters() {
  const listId = (i) => `f-values-${i}`;
  ui.filters.replaceChildren(...state.filters.map((f, i) => {
    const keys = state.fields.map((x) => x.key);
    if (f.key && !keys.includes(f.key)) keys.push(f.key);
    const keySel = el("select", { class: "f-key", "aria-label": `Filter ${i + 1} field` },
      keys.map((k) => el("option", { value: k, text: k, selected: k === f.key })));
    const opSel = el("select", { class: "f-op", "aria-label": `Filter ${i + 1} operator` },
      OPS.map((o) => el("option", { value: o.op, text: o.label, selected: o.op === f.op })));
    const samples = (fieldInfo(f.key)?.values || []).flat().filter((v) => v !== null && typeof v !== "object");
    const value = el("input", {
      class: "f-value", type: "text", value: f.value, list: listId(i), placeholder: "value",
      "aria-label": `Filter ${i + 1} value`, hidden: f.op === "$exists",
    });
    const datalist = el("datalist", { id: listId(i) }, [...new Set(samples.map(String))].map((v) => el("option", { value: v })));
    const remove = el("button", { type: "button", class: "icon-btn", "aria-label": `Remove filter ${i + 1}`, title: "Remove filter" }, icon("close"));

    keySel.addEventListener("change", () => { f.key = keySel.value; renderFilters(); applyFilters(); });
    opSel.addEventListener("change", () => {
      f.op = opSel.value;
      value.hidden = f.op === "$exists";
      applyFilters();
    });
    value.addEventListener("change", () => { f.value = value.value; applyFilters(); });
    value.addEventListener("keydown", (e) => {
      if (e.key === "Enter") { e.preventDefault(); f.value = value.value; applyFilters(); }
    });
    remove.addEventListener("click", () => {
      state.filters.splice(i, 1);
      renderFilters();
      applyFilters();
      ui.addFilter.focus();
    });
    return el("div", { class: "filter", role: "group", "aria-label": `Filter ${i + 1}` }, keySel, opSel, value, datalist, remove);
  }));
  ui.clearFilters.hidden = state.filters.length === 0;
  ui.addFilter.disabled = !state.collection;
}

// Turns what was typed into the JSON value the filter language compares against:
// numbers for numeric fields, booleans for boolean fields, strings otherwise.
export function coerce(key, op, raw) {
  const text = raw.trim();
  const samples = (fieldInfo(key)?.values || []).flat();
  const type = fieldInfo(key)?.type;
  const numeric = type ? type === "number" : samples.length > 0 && samples.every((v) => typeof v === "number");
  const boolean = type ? type === "boolean" : samples.length > 0 && samples.every((v) => typeof v === "boolean");
  if (boolean && /^(true|false)$/i.test(text)) return text.toLowerCase() === "true";
  const asNumber = Number(text);
  const looksNumeric = text !== "" && Number.isFinite(asNumber);
  if (looksNumeric && (numeric || (samples.length === 0 && ["width", "height"].includes(key)))) return asNumber;
  if (looksNumeric && ["$gt", "$gte", "$lt", "$lte"].includes(op) && !samples.some((v) => typeof v === "string")) {
    return asNumber;
  }
  return text;
}

export function buildWhere() {
  const conds = [];
  for (const f of state.filters) {
    if (!f.key) continue;
    if (f.op === "$exists") { conds.push({ [f.key]: { $exists: true } }); continue; }
    if (String(f.value).trim() === "") continue;   // an unfinished row does not filter yet
    const v = coerce(f.key, f.op, String(f.value));
    conds.push({ [f.key]: f.op === "$eq" ? v : { [f.op]: v } });
  }
  if (!conds.length) return null;
  const keys = conds.map((c) => Object.keys(c)[0]);
  // One key per condition reads best as a plain dict; repeated keys need an explicit $and.
  if (new Set(keys).size === keys.length) return Object.assign({}, ...conds);
  return { $and: conds };
}

let filterTimer = null;
export function applyFilters() {
  clearTimeout(filterTimer);
  filterTimer = setTimeout(() => run(), 120);
}

export function clearFilters() {
  state.filters = [];
  renderFilters();
  run();
}
