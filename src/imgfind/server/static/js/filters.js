// The filter picker: rows of field, condition and value. Fields come from the
// collection's field catalog (every key any item has, with its type); conditions fit
// the field's type and read as words; a value that does not fit gets a plain message
// ("width must be a number") instead of a query. Rows become the REST `where` filter.

import { el, icon } from "./dom.js";
import { run } from "./search.js";
import { state, ui } from "./state.js";

const OPS = {
  number: [["$eq", "is"], ["$ne", "is not"], ["$gt", "more than"], ["$gte", "at least"],
    ["$lt", "less than"], ["$lte", "at most"], ["$exists", "is set"]],
  string: [["$eq", "is"], ["$ne", "is not"], ["$contains", "contains"], ["$exists", "is set"]],
  date: [["$gte", "on or after"], ["$lt", "before"], ["$exists", "is set"]],
  boolean: [["$eq", "is"], ["$exists", "is set"]],
  list: [["$contains", "includes"], ["$exists", "is set"]],
};
const ALL_OPS = new Set(Object.values(OPS).flat().map(([op]) => op));

const GROUPS = [
  ["Image", (k) => !k.includes(".") && k !== "ocr"],
  ["Your metadata", (k) => k.startsWith("metadata.")],
  ["Text in image", (k) => k === "ocr" || k.startsWith("ocr.")],
  ["Camera (EXIF)", (k) => k.startsWith("exif.")],
  ["File", (k) => k.startsWith("file.")],
];

const NAMES = { format: "Format", width: "Width (px)", height: "Height (px)", taken: "Date taken",
  added: "Date added", updated: "Date updated", stored: "Stored by imgfind", source: "Source",
  sha256: "SHA-256", id: "Id", ocr: "Text in image" };

export function fieldInfo(key) {
  return state.fields.find((f) => f.key === key);
}

/** A field's name as people read it: "album", "Width (px)", "Model (EXIF)". */
export function fieldName(key) {
  if (NAMES[key]) return NAMES[key];
  const [head, ...rest] = key.split(".");
  const tail = rest.join(".");
  if (head === "metadata") return tail;
  if (head === "exif") return `${tail} (EXIF)`;
  if (head === "file") return `file ${tail}`;
  return key;
}

function typeOf(key) {
  const f = fieldInfo(key);
  if (f?.type && OPS[f.type]) return f.type;
  if (["taken", "added", "updated"].includes(key)) return "date";
  return "string";
}

export function validOp(key, op) {
  return OPS[typeOf(key)].some(([o]) => o === op);
}

export function addFilterRow(filter = { key: state.fields[0]?.key || "", op: "", value: "" }) {
  if (!filter.op) filter.op = OPS[typeOf(filter.key)][0][0];
  state.filters.push(filter);
  renderFilters();
  const rows = ui.filters.querySelectorAll(".filter");
  rows[rows.length - 1]?.querySelector(".f-key")?.focus();
}

/** Reads one row's value: {ok, value} or {ok: false, message}. */
export function parseValue(f) {
  const type = typeOf(f.key);
  const text = String(f.value ?? "").trim();
  const name = fieldName(f.key).replace(/ \(.*\)$/, "");
  if (f.op === "$exists") return { ok: true, value: true };
  if (text === "") return { ok: true, value: undefined };   // an unfinished row does not filter yet
  if (type === "number") {
    const n = Number(text);
    return Number.isFinite(n) ? { ok: true, value: n } : { ok: false, message: `${name} must be a number` };
  }
  if (type === "boolean") {
    if (/^(true|yes)$/i.test(text)) return { ok: true, value: true };
    if (/^(false|no)$/i.test(text)) return { ok: true, value: false };
    return { ok: false, message: `${name} must be yes or no` };
  }
  if (type === "date") {
    return /^\d{4}-\d{2}-\d{2}$/.test(text) && !Number.isNaN(new Date(text).getTime())
      ? { ok: true, value: text } : { ok: false, message: `${name} must be a date like 2024-05-31` };
  }
  if (type === "list") {
    const n = Number(text);
    const numeric = (fieldInfo(f.key)?.values || []).some((v) => typeof v === "number");
    return { ok: true, value: numeric && Number.isFinite(n) ? n : text };
  }
  return { ok: true, value: text };
}

function valueInput(f, i) {
  const type = typeOf(f.key);
  const label = `Filter ${i + 1} value`;
  if (type === "boolean") {
    return el("select", { class: "f-value", "aria-label": label, hidden: f.op === "$exists" },
      el("option", { value: "", text: "choose…" }),
      el("option", { value: "true", text: "yes", selected: f.value === "true" }),
      el("option", { value: "false", text: "no", selected: f.value === "false" }));
  }
  const samples = (fieldInfo(f.key)?.values || []).flat().filter((v) => v !== null && typeof v !== "object");
  const listId = `f-values-${i}`;
  const input = el("input", {
    class: "f-value", type: type === "date" ? "date" : "text", value: f.value, list: listId,
    inputmode: type === "number" ? "decimal" : null,
    placeholder: type === "number" ? "number" : "value", "aria-label": label, hidden: f.op === "$exists",
  });
  const datalist = el("datalist", { id: listId }, [...new Set(samples.map(String))].map((v) => el("option", { value: v })));
  return [input, datalist];
}

function keySelect(f, i) {
  const keys = state.fields.map((x) => x.key);
  if (f.key && !keys.includes(f.key)) keys.push(f.key);
  const option = (k) => {
    const count = fieldInfo(k)?.count;
    return el("option", { value: k, selected: k === f.key, text: count ? `${fieldName(k)} · ${count.toLocaleString()}` : fieldName(k) });
  };
  const groups = GROUPS.map(([label, test]) => {
    const mine = keys.filter(test);
    return mine.length ? el("optgroup", { label }, mine.map(option)) : null;
  });
  const grouped = new Set(keys.filter((k) => GROUPS.some(([, t]) => t(k))));
  return el("select", { class: "f-key", "aria-label": `Filter ${i + 1} field` },
    groups, keys.filter((k) => !grouped.has(k)).map(option));
}

export function renderFilters() {
  ui.filters.replaceChildren(...state.filters.map((f, i) => {
    const keySel = keySelect(f, i);
    const opSel = el("select", { class: "f-op", "aria-label": `Filter ${i + 1} condition` },
      OPS[typeOf(f.key)].map(([op, label]) => el("option", { value: op, text: label, selected: op === f.op })));
    const [value, datalist] = [].concat(valueInput(f, i));
    const msg = el("span", { class: "field-error f-error", role: "alert", hidden: true });
    const remove = el("button", { type: "button", class: "icon-btn", "aria-label": `Remove filter ${i + 1}`, title: "Remove filter" }, icon("close"));

    keySel.addEventListener("change", () => {
      f.key = keySel.value;
      if (!validOp(f.key, f.op)) f.op = OPS[typeOf(f.key)][0][0];
      f.value = "";
      renderFilters();
      applyFilters();
    });
    opSel.addEventListener("change", () => {
      f.op = opSel.value;
      value.hidden = f.op === "$exists";
      applyFilters();
    });
    // Enter and the change event both apply a value; the second of them is not a new query.
    const commit = () => {
      if (f.value === value.value) return;
      f.value = value.value;
      applyFilters();
    };
    value.addEventListener("change", commit);
    value.addEventListener("keydown", (e) => {
      if (e.key === "Enter") { e.preventDefault(); commit(); }
    });
    remove.addEventListener("click", () => {
      state.filters.splice(i, 1);
      renderFilters();
      applyFilters();
      ui.addFilter.focus();
    });
    return el("div", { class: "filter", role: "group", "aria-label": `Filter ${i + 1}` },
      keySel, opSel, value, datalist, remove, msg);
  }));
  ui.clearFilters.hidden = state.filters.length === 0;
  ui.addFilter.disabled = !state.collection;
}

/** Shows each row's message; true when every row can be sent. */
function checkRows() {
  let ok = true;
  ui.filters.querySelectorAll(".filter").forEach((row, i) => {
    const f = state.filters[i];
    const res = f ? parseValue(f) : { ok: true };
    row.classList.toggle("invalid", !res.ok);
    const msg = row.querySelector(".f-error");
    msg.hidden = res.ok;
    msg.textContent = res.ok ? "" : res.message;
    if (!res.ok) ok = false;
  });
  return ok;
}

export function buildWhere() {
  const conds = [];
  for (const f of state.filters) {
    if (!f.key) continue;
    const { ok, value } = parseValue(f);
    if (!ok || value === undefined) continue;
    conds.push({ [f.key]: f.op === "$eq" ? value : { [f.op]: value } });
  }
  if (!conds.length) return null;
  const keys = conds.map((c) => Object.keys(c)[0]);
  // One key per condition reads best as a plain dict; repeated keys need an explicit $and.
  if (new Set(keys).size === keys.length) return Object.assign({}, ...conds);
  return { $and: conds };
}

/** Rows from a URL: unknown operators fall back to the field's first condition. */
export function filtersFromUrl(rows) {
  return rows.filter((f) => Array.isArray(f) && f.length === 3)
    .map(([key, op, value]) => ({ key: String(key), op: ALL_OPS.has(op) ? op : "$eq", value: String(value ?? "") }));
}

let filterTimer = null;
export function applyFilters() {
  clearTimeout(filterTimer);
  if (!checkRows()) return;
  // Busy from now, not from when the debounced query starts: what is shown is stale.
  ui.gallery.setAttribute("aria-busy", "true");
  filterTimer = setTimeout(() => run(), 120);
}

export function clearFilters() {
  state.filters = [];
  renderFilters();
  run();
}
