// imgfind web UI: plain ES module, no build step. Talks to the REST API under api/.
// URLs are relative so the page also works when the server is mounted under a prefix.

const PAGE = 60;
const KEY_STORE = "imgfind.apiKey";
const K_STORE = "imgfind.k";
const COLLECTION_STORE = "imgfind.collection";

const OPS = [
  { op: "$eq", label: "=" },
  { op: "$ne", label: "≠" },
  { op: "$gt", label: ">" },
  { op: "$gte", label: "≥" },
  { op: "$lt", label: "<" },
  { op: "$lte", label: "≤" },
  { op: "$contains", label: "contains" },
  { op: "$exists", label: "exists" },
];

const $ = (sel, root = document) => root.querySelector(sel);

const ui = {
  collection: $("#collection"),
  count: $("#collection-count"),
  form: $("#search-form"),
  q: $("#q"),
  k: $("#k"),
  searchBtn: $("#search-btn"),
  searchFile: $("#search-file"),
  filters: $("#filters"),
  addFilter: $("#add-filter"),
  clearFilters: $("#clear-filters"),
  chip: $("#query-chip"),
  status: $("#status"),
  banner: $("#banner"),
  gallery: $("#gallery"),
  empty: $("#empty"),
  loadMore: $("#load-more"),
  overlay: $("#drop-overlay"),
  itemView: $("#item-view"),
  uploadView: $("#upload-view"),
  settingsView: $("#settings-view"),
  confirmView: $("#confirm-view"),
  toasts: $("#toasts"),
};

const state = {
  collections: [],
  collection: null,
  count: 0,
  fields: [],
  filters: [],          // [{key, op, value}]
  query: null,          // null (browse) | {kind: "text", text} | {kind: "image", file, url} | {kind: "like", id, name}
  results: [],          // [{item, score?}]
  total: 0,
  seq: 0,               // request counter: responses of superseded requests are dropped
  current: -1,          // index in results of the item shown in the item view
  uploads: [],          // [{file, row, state}]
};

// ---------------------------------------------------------------- API

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function authHeaders() {
  const key = localStorage.getItem(KEY_STORE);
  return key ? { Authorization: `Bearer ${key}` } : {};
}

function errorFrom(status, data, statusText = "") {
  const err = data && data.error;
  if (err && err.message) return new ApiError(status, err.code || "error", err.message);
  // FastAPI's own validation errors come as {"detail": [...]} or {"detail": "..."}.
  if (data && data.detail) {
    const detail = Array.isArray(data.detail)
      ? data.detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ")
      : String(data.detail);
    return new ApiError(status, "invalid_request", detail);
  }
  return new ApiError(status, "http_error", `The server answered ${status} ${statusText}`.trim());
}

async function api(path, { method = "GET", json, form } = {}) {
  const headers = authHeaders();
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form) {
    body = form;
  }
  let res;
  try {
    res = await fetch(path, { method, headers, body });
  } catch {
    throw new ApiError(0, "network", "Cannot reach the imgfind server. Is it still running?");
  }
  const data = await res.json().catch(() => null);
  if (!res.ok) throw errorFrom(res.status, data, res.statusText);
  return data;
}

const colPath = (name = state.collection) => `api/collections/${encodeURIComponent(name)}`;
const itemPath = (id) => `${colPath()}/items/${encodeURIComponent(id)}`;
const thumbUrl = (id) => `${itemPath(id)}/thumbnail`;
const imageUrl = (id) => `${itemPath(id)}/image`;

// ---------------------------------------------------------------- small helpers

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c !== null && c !== undefined && c !== false) node.append(c instanceof Node ? c : String(c));
  }
  return node;
}

const SVG_NS = "http://www.w3.org/2000/svg";
const ICONS = {
  similar: '<circle cx="11" cy="11" r="7"/><path d="m20 20-3.5-3.5M8 11h6M11 8v6"/>',
  open: '<path d="M4 12s3-7 8-7 8 7 8 7-3 7-8 7-8-7-8-7z"/><circle cx="12" cy="12" r="2.5"/>',
  trash: '<path d="M4 7h16M10 11v6M14 11v6M6 7l1 12a2 2 0 0 0 2 2h6a2 2 0 0 0 2-2l1-12M9 7V4h6v3"/>',
  close: '<path d="M6 6l12 12M18 6 6 18"/>',
  image: '<rect x="3" y="5" width="18" height="14" rx="2"/><circle cx="9" cy="10" r="1.8"/><path d="m21 16-5-5-9 8"/>',
};

function icon(name) {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("class", "icon");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.innerHTML = ICONS[name];
  return svg;
}

const BROKEN_IMAGE = "data:image/svg+xml," + encodeURIComponent(
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" fill="none" stroke="#8a93a3" ' +
  'stroke-width="1.5" stroke-linecap="round" stroke-linejoin="round">' + ICONS.image + "</svg>");

function displayName(item) {
  const src = item.source || item.id;
  const name = src.startsWith("upload:") ? src.slice(7) : src.split(/[\\/]/).filter(Boolean).pop();
  return name || item.id;
}

function formatBytes(n) {
  if (typeof n !== "number") return String(n);
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i && n < 10 ? 1 : 0)} ${units[i]}`;
}

function formatDate(v) {
  if (v === null || v === undefined || v === "") return null;
  const s = String(v).replace(/^(\d{4}):(\d{2}):(\d{2})/, "$1-$2-$3");  // EXIF "2023:07:14 18:22:05"
  const d = new Date(typeof v === "number" ? v * 1000 : s.replace(" ", "T"));
  if (Number.isNaN(d.getTime())) return String(v);
  const hasTime = typeof v === "number" || /[T ]\d{2}:\d{2}/.test(s);
  return d.toLocaleString(undefined, hasTime
    ? { dateStyle: "medium", timeStyle: "short" } : { dateStyle: "medium" });
}

function plural(n, word) {
  return `${n.toLocaleString()} ${word}${n === 1 ? "" : "s"}`;
}

// ---------------------------------------------------------------- toasts and banner

function toast(message, { title, error = false, action } = {}) {
  const msg = el("div", { class: "msg" }, title ? el("strong", { text: title }) : null, el("span", { text: message }));
  const node = el("div", { class: `toast${error ? " error" : ""}`, role: error ? "alert" : "status" }, msg);
  if (action) {
    msg.append(el("button", {
      type: "button", class: "btn small", text: action.label,
      onclick: () => { node.remove(); action.run(); },
    }));
  }
  const close = el("button", { type: "button", class: "icon-btn", "aria-label": "Dismiss" }, icon("close"));
  close.addEventListener("click", () => node.remove());
  node.append(close);
  // Modal dialogs sit in the top layer and make the page inert: show toasts inside the
  // topmost open dialog so they stay visible and clickable.
  const host = [...document.querySelectorAll("dialog[open]")].pop() || document.body;
  if (ui.toasts.parentElement !== host) host.append(ui.toasts);
  ui.toasts.append(node);
  setTimeout(() => node.remove(), error ? 9000 : 4500);
}

function explain(err) {
  // The server's 401 text is written for API clients; say what to do in this page instead.
  if (err.status === 401) return "This server needs an API key for changes. Set it to continue.";
  if (err.status === 403) return `${err.message} — this API key is not allowed to do that.`;
  return err.message;
}

function showError(err, title) {
  const action = err.status === 401 ? { label: "Set API key", run: openSettings } : undefined;
  toast(explain(err), { title, error: true, action });
}

function showBanner(err, title) {
  ui.banner.replaceChildren(el("div", {}, el("strong", { text: title }), el("div", { text: explain(err) })));
  ui.banner.hidden = false;
}

// ---------------------------------------------------------------- URL hash state

function readHash() {
  const p = new URLSearchParams(location.hash.slice(1));
  let filters = [];
  try { filters = JSON.parse(p.get("f") || "[]"); } catch { filters = []; }
  return { c: p.get("c"), q: p.get("q"), like: p.get("like"), filters: Array.isArray(filters) ? filters : [] };
}

function writeHash() {
  const p = new URLSearchParams();
  if (state.collection) p.set("c", state.collection);
  if (state.query?.kind === "text") p.set("q", state.query.text);
  if (state.query?.kind === "like") p.set("like", state.query.id);
  const f = state.filters.filter((x) => x.key).map((x) => [x.key, x.op, x.value]);
  if (f.length) p.set("f", JSON.stringify(f));
  const hash = "#" + p.toString();
  if (hash !== location.hash) history.replaceState(null, "", hash);
}

// ---------------------------------------------------------------- collections

async function loadCollections(preferred) {
  let data;
  try {
    data = await api("api/collections");
  } catch (err) {
    showBanner(err, "Could not load collections");
    return;
  }
  state.collections = data.collections || [];
  ui.collection.replaceChildren(...state.collections.map((c) =>
    el("option", { value: c.name, text: c.name })));
  if (!state.collections.length) {
    state.collection = null;
    ui.collection.disabled = true;
    ui.count.textContent = "";
    renderNoCollections();
    return;
  }
  ui.collection.disabled = false;
  const names = state.collections.map((c) => c.name);
  const pick = [preferred, localStorage.getItem(COLLECTION_STORE), "default"].find((n) => n && names.includes(n));
  await selectCollection(pick || names[0], { keepQuery: true });
}

async function selectCollection(name, { keepQuery = false } = {}) {
  state.collection = name;
  ui.collection.value = name;
  localStorage.setItem(COLLECTION_STORE, name);
  const info = state.collections.find((c) => c.name === name);
  setCount(info ? info.count : 0);
  if (!keepQuery) {
    // Ids and fields belong to one collection: a "like" query or filters don't carry over.
    if (state.query?.kind === "like") state.query = null;
    state.filters = [];
  }
  await loadFields();
  renderFilters();
  await run();
}

function setCount(n) {
  state.count = n;
  ui.count.textContent = plural(n, "image");
}

async function refreshCount() {
  try {
    const info = await api(colPath());
    setCount(info.count);
  } catch {
    // The count is a nicety; the gallery shows any real error.
  }
}

async function loadFields() {
  try {
    const data = await api(`${colPath()}/fields`);
    state.fields = data.fields || [];
  } catch (err) {
    state.fields = [];
    showError(err, "Could not load filterable fields");
  }
}

function renderNoCollections() {
  ui.gallery.replaceChildren();
  ui.status.textContent = "";
  ui.loadMore.hidden = true;
  const input = el("input", { type: "text", id: "new-collection", "aria-label": "New collection name",
    placeholder: "photos", required: true, pattern: "[A-Za-z0-9_\\-]+" });
  const form = el("form", {}, input, el("button", { type: "submit", class: "btn primary", text: "Create collection" }));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await api("api/collections", { method: "POST", json: { name: input.value.trim() } });
      await loadCollections(input.value.trim());
    } catch (err) {
      showError(err, "Could not create the collection");
    }
  });
  ui.empty.replaceChildren(
    el("h2", { text: "No collections yet" }),
    el("p", {}, "Create one here, or index a folder from a terminal with ", el("code", { text: "imgfind index PATH" }), "."),
    form,
  );
  ui.empty.hidden = false;
}

// ---------------------------------------------------------------- filters

function fieldInfo(key) {
  return state.fields.find((f) => f.key === key);
}

function addFilterRow(filter = { key: state.fields[0]?.key || "", op: "$eq", value: "" }) {
  state.filters.push(filter);
  renderFilters();
  const rows = ui.filters.querySelectorAll(".filter");
  rows[rows.length - 1]?.querySelector(".f-key")?.focus();
}

function renderFilters() {
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
function coerce(key, op, raw) {
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

function buildWhere() {
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
function applyFilters() {
  clearTimeout(filterTimer);
  filterTimer = setTimeout(() => run(), 120);
}

// ---------------------------------------------------------------- queries

function setQuery(query) {
  if (state.query?.kind === "image" && state.query !== query) URL.revokeObjectURL(state.query.url);
  state.query = query;
  if (query?.kind !== "text") ui.q.value = query ? "" : ui.q.value;
}

async function run({ append = false } = {}) {
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

function showLoading() {
  ui.empty.hidden = true;
  ui.loadMore.hidden = true;
  ui.gallery.setAttribute("aria-busy", "true");
  const n = Math.min(state.query ? Number(ui.k.value) : PAGE, 12);
  ui.gallery.replaceChildren(...Array.from({ length: n }, () =>
    el("div", { class: "card skeleton", "aria-hidden": "true" }, el("div", { class: "thumb" }), el("div", { class: "line" }))));
  ui.status.textContent = state.query ? "Searching…" : "Loading…";
}

function renderChip() {
  const q = state.query;
  if (!q || q.kind === "text") { ui.chip.hidden = true; ui.chip.replaceChildren(); return; }
  const src = q.kind === "image" ? q.url : thumbUrl(q.id);
  const label = q.kind === "image" ? (q.file.name || "pasted image") : q.name || q.id;
  const clear = el("button", { type: "button", class: "icon-btn", "aria-label": "Clear image query", title: "Clear" }, icon("close"));
  clear.addEventListener("click", () => { setQuery(null); run(); });
  ui.chip.replaceChildren(el("img", { src, alt: "" }), el("span", {}, "Similar to ", el("strong", { text: label })), clear);
  ui.chip.hidden = false;
}

function renderResults({ append, newResults, tookMs }) {
  ui.gallery.removeAttribute("aria-busy");
  const cards = newResults.map((r, i) => card(r, append ? state.results.length - newResults.length + i : i));
  if (append) ui.gallery.append(...cards);
  else ui.gallery.replaceChildren(...cards);

  const filtered = buildWhere() !== null;
  const q = state.query;
  const n = state.results.length;
  if (!q) {
    ui.status.replaceChildren(n < state.total
      ? el("span", {}, "Showing ", el("strong", { text: n.toLocaleString() }), ` of ${plural(state.total, "image")}`)
      : el("span", {}, el("strong", { text: plural(state.total, "image") })),
    filtered ? " matching the filters" : "");
  } else {
    const what = q.kind === "text" ? el("span", {}, " for “", el("strong", { text: q.text }), "”") : "";
    const took = typeof tookMs === "number" ? ` · ${tookMs < 10 ? tookMs.toFixed(1) : Math.round(tookMs)} ms` : "";
    ui.status.replaceChildren(`${plural(n, "result")}`, what, filtered ? " with filters" : "", took);
  }
  ui.loadMore.hidden = !!q || n >= state.total;
  renderEmpty(filtered);
}

function renderEmpty(filtered) {
  if (state.results.length) { ui.empty.hidden = true; return; }
  const parts = [];
  if (filtered) {
    parts.push(el("h2", { text: "Nothing matches these filters" }),
      el("p", { text: "Loosen or remove a filter to see more images." }),
      el("button", { type: "button", class: "btn", text: "Clear filters", onclick: clearFilters }));
  } else if (state.count === 0 || !state.query) {
    parts.push(el("h2", { text: "This collection is empty" }),
      el("p", {}, "No images yet — drop some here or run ", el("code", { text: "imgfind index PATH" }), "."),
      el("button", { type: "button", class: "btn primary", text: "Add images", onclick: () => openUpload() }));
  } else {
    parts.push(el("h2", { text: "No results" }), el("p", { text: "Try other words or another image." }));
  }
  ui.empty.replaceChildren(...parts);
  ui.empty.hidden = false;
  if (!filtered && !state.query) ui.status.textContent = "";
}

function clearFilters() {
  state.filters = [];
  renderFilters();
  run();
}

function card(result, index) {
  const { item, score } = result;
  const name = displayName(item);
  const img = el("img", { src: thumbUrl(item.id), alt: name, loading: "lazy", decoding: "async" });
  img.addEventListener("load", () => img.classList.add("loaded"), { once: true });
  img.addEventListener("error", () => { img.src = BROKEN_IMAGE; img.classList.add("broken"); }, { once: true });
  const dims = [item.width && item.height ? `${item.width} × ${item.height}` : null, item.format].filter(Boolean).join(" · ");
  const scoreText = typeof score === "number" ? score.toFixed(3) : null;
  return el("article", {
    class: "card", tabindex: "0", "data-id": item.id, "data-index": index,
    "aria-label": scoreText ? `${name}, score ${scoreText}` : name,
  },
  el("div", { class: "thumb" }, img,
    scoreText ? el("span", { class: "score", title: "Similarity score (cosine, higher is closer)", text: scoreText }) : null,
    el("div", { class: "actions" },
      el("button", { type: "button", class: "icon-btn", "data-action": "similar", title: "Find similar", "aria-label": `Find images similar to ${name}` }, icon("similar")),
      el("button", { type: "button", class: "icon-btn", "data-action": "open", title: "Open", "aria-label": `Open ${name}` }, icon("open")),
      el("button", { type: "button", class: "icon-btn del", "data-action": "delete", title: "Delete", "aria-label": `Delete ${name}` }, icon("trash")))),
  el("div", { class: "body" },
    el("div", { class: "name", title: item.source, text: name }),
    dims ? el("div", { class: "dims", text: dims }) : null));
}

function searchText(text) {
  text = text.trim();
  setQuery(text ? { kind: "text", text } : null);
  run();
}

function searchImage(file) {
  if (!file) return;
  if (file.type && !file.type.startsWith("image/") && !/\.(heic|heif|avif)$/i.test(file.name)) {
    toast(`${file.name} is not an image.`, { title: "Cannot search by this file", error: true });
    return;
  }
  setQuery({ kind: "image", file, url: URL.createObjectURL(file) });
  run();
}

function searchLike(item) {
  setQuery({ kind: "like", id: item.id, name: displayName(item) });
  run();
  window.scrollTo({ top: 0, behavior: "smooth" });
}

// ---------------------------------------------------------------- item view

const EXIF_FIELDS = [
  ["Camera", (x) => {
    const make = pick(x, "Make"), model = pick(x, "Model");
    if (!make && !model) return null;
    return model && make && String(model).startsWith(String(make)) ? model : [make, model].filter(Boolean).join(" ");
  }],
  ["Lens", (x) => pick(x, "lens", "LensModel", "LensMake")],
  ["Date taken", (x) => formatDate(pick(x, "DateTimeOriginal", "taken", "DateTimeDigitized", "DateTime"))],
  ["Exposure", (x) => {
    const t = num(pick(x, "exposure_time", "ExposureTime"));
    if (t === null) return null;
    return t >= 1 ? `${t} s` : `1/${Math.round(1 / t)} s`;
  }],
  ["Aperture", (x) => { const f = num(pick(x, "f_number", "FNumber", "ApertureValue")); return f === null ? null : `ƒ/${+f.toFixed(1)}`; }],
  ["ISO", (x) => pick(x, "iso", "ISOSpeedRatings", "PhotographicSensitivity")],
  ["Focal length", (x) => { const f = num(pick(x, "focal_length", "FocalLength")); return f === null ? null : `${+f.toFixed(1)} mm`; }],
  ["Flash", (x) => pick(x, "Flash")],
  ["Software", (x) => pick(x, "Software")],
];

// Flattens nested EXIF ({"GPSInfo": {"GPSLatitude": ...}}) to leaf-name lookups, case-insensitive.
function flatten(obj, prefix = "", out = {}) {
  for (const [k, v] of Object.entries(obj || {})) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === "object" && !Array.isArray(v)) flatten(v, key, out);
    else out[key] = v;
  }
  return out;
}

function pick(flat, ...names) {
  for (const name of names) {
    const want = name.toLowerCase();
    for (const [k, v] of Object.entries(flat)) {
      if (k.split(".").pop().toLowerCase() === want && v !== null && v !== "") return v;
    }
  }
  return null;
}

// EXIF rationals arrive as numbers, "1/250" strings or [num, den] pairs.
function num(v) {
  if (v === null || v === undefined) return null;
  if (typeof v === "number") return v;
  if (Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === "number")) return v[1] ? v[0] / v[1] : null;
  const m = String(v).match(/^\s*(-?[\d.]+)\s*\/\s*([\d.]+)\s*$/);
  if (m) return Number(m[2]) ? Number(m[1]) / Number(m[2]) : null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
}

function degrees(v) {
  if (Array.isArray(v) && v.length === 3) {
    const [d, m, s] = v.map(num);
    return [d, m, s].some((x) => x === null) ? null : d + m / 60 + s / 3600;
  }
  return num(v);
}

const FILE_LABELS = { path: "Path", name: "Name", dir: "Folder", ext: "Extension", size: "Size",
  mtime: "Modified", ctime: "Changed" };

function findGps(item) {
  const flat = flatten({ exif: item.exif, metadata: item.metadata });
  let lat = degrees(pick(flat, "lat", "latitude", "GPSLatitude"));
  let lon = degrees(pick(flat, "lon", "lng", "longitude", "GPSLongitude"));
  if (lat === null || lon === null) return null;
  const latRef = String(pick(flat, "GPSLatitudeRef", "LatitudeRef") || "").toUpperCase();
  const lonRef = String(pick(flat, "GPSLongitudeRef", "LongitudeRef") || "").toUpperCase();
  if (latRef.startsWith("S") && lat > 0) lat = -lat;
  if (lonRef.startsWith("W") && lon > 0) lon = -lon;
  if (Math.abs(lat) > 90 || Math.abs(lon) > 180) return null;
  return { lat, lon, alt: num(pick(flat, "alt", "altitude", "GPSAltitude")) };
}

function valueNode(v) {
  if (Array.isArray(v) && v.every((x) => x === null || typeof x !== "object")) {
    return el("span", {}, v.map((x) => el("span", { class: "tag", text: String(x) })));
  }
  if (v && typeof v === "object") return el("code", { text: JSON.stringify(v) });
  if (typeof v === "boolean") return v ? "yes" : "no";
  return String(v);
}

function dl(rows) {
  const shown = rows.filter(([, v]) => v !== null && v !== undefined && v !== "");
  return el("dl", {}, shown.map(([k, v]) => [el("dt", { text: k }), el("dd", {}, v instanceof Node ? v : valueNode(v))]));
}

function section(title, body) {
  return el("section", { "aria-label": title }, el("h3", { text: title }), body);
}

function renderItemDetails(item) {
  const parts = [];
  const meta = Object.entries(item.metadata || {});
  parts.push(section("Metadata", meta.length ? dl(meta) : el("p", { class: "none", text: "No metadata of your own yet." })));

  const flat = flatten(item.exif);
  const camera = EXIF_FIELDS.map(([label, f]) => [label, f({ ...flat, taken: flat.taken ?? item.taken })]);
  if (camera.some(([, v]) => v !== null && v !== undefined && v !== "")) parts.push(section("Camera", dl(camera)));

  const gps = findGps(item);
  if (gps) {
    const coords = `${gps.lat.toFixed(5)}, ${gps.lon.toFixed(5)}`;
    const osm = `https://www.openstreetmap.org/?mlat=${gps.lat.toFixed(6)}&mlon=${gps.lon.toFixed(6)}#map=15/${gps.lat.toFixed(6)}/${gps.lon.toFixed(6)}`;
    parts.push(section("Location", el("dl", {},
      el("dt", { text: "Coordinates" }), el("dd", { class: "mono", "data-gps": coords, text: coords }),
      gps.alt !== null ? [el("dt", { text: "Altitude" }), el("dd", { text: `${Math.round(gps.alt)} m` })] : null,
      el("dt", { text: "Map" }), el("dd", {}, el("a", { href: osm, target: "_blank", rel: "noopener", class: "osm-link", text: "Open in OpenStreetMap ↗" })))));
  }

  const mp = item.width && item.height ? ` (${(item.width * item.height / 1e6).toFixed(1)} MP)` : "";
  parts.push(section("Image", dl([
    ["Format", item.format],
    ["Dimensions", item.width && item.height ? `${item.width} × ${item.height}${mp}` : null],
    ["Taken", formatDate(item.taken)],
    ["Added", formatDate(item.added)],
    ["Updated", formatDate(item.updated)],
    ["Storage", item.stored ? "Stored by imgfind" : "Referenced in place"],
    ["Id", el("span", { class: "mono", text: item.id })],
  ])));

  const file = Object.entries(item.file || {}).filter(([k]) => !k.endsWith("_ns")).map(([k, v]) => {
    const label = FILE_LABELS[k] || k.charAt(0).toUpperCase() + k.slice(1).replace(/_/g, " ");
    if (/size|bytes/i.test(k) && typeof v === "number") return [label, formatBytes(v)];
    if (/time|date|modified|created/i.test(k)) return [label, formatDate(v)];
    if (k === "path" || k === "dir") return [label, el("span", { class: "mono", text: v })];
    return [label, v];
  });
  if (item.sha256) file.push(["SHA-256", el("span", { class: "mono", title: item.sha256, text: item.sha256.slice(0, 16) + "…" })]);
  if (file.length) parts.push(section("File", dl(file)));

  const allExif = Object.entries(flat);
  if (allExif.length) {
    parts.push(el("details", {}, el("summary", { text: `All EXIF fields (${allExif.length})` }), dl(allExif)));
  }
  $("#item-details").replaceChildren(...parts);
}

function showItem(index) {
  const r = state.results[index];
  if (!r) return;
  state.current = index;
  const { item } = r;
  const name = displayName(item);
  $("#item-title").textContent = name;
  $("#item-source").textContent = item.source;
  const img = $("#item-image");
  img.alt = name;
  img.onerror = () => { img.onerror = null; img.src = thumbUrl(item.id); };  // e.g. HEIC the browser cannot show
  img.src = imageUrl(item.id);
  $("#item-open").href = imageUrl(item.id);
  $("#item-prev").hidden = index <= 0;
  $("#item-next").hidden = index >= state.results.length - 1;
  renderItemDetails(item);
  if (!ui.itemView.open) ui.itemView.showModal();
}

function openItem(index) {
  showItem(index);
  $("#item-close").focus();
}

function closeItem() {
  if (!ui.itemView.open) return;
  ui.itemView.close();
}

ui.itemView.addEventListener("close", () => {
  // Give focus back to the card the view was opened from.
  const r = state.results[state.current];
  if (r) ui.gallery.querySelector(`.card[data-id="${CSS.escape(r.item.id)}"]`)?.focus();
  $("#item-image").removeAttribute("src");
});

ui.itemView.addEventListener("keydown", (e) => {
  if (e.target.matches("input, textarea, select")) return;
  if (e.key === "ArrowLeft" && state.current > 0) { e.preventDefault(); showItem(state.current - 1); }
  if (e.key === "ArrowRight" && state.current < state.results.length - 1) { e.preventDefault(); showItem(state.current + 1); }
});
// A click on the backdrop (outside the dialog box) closes it.
ui.itemView.addEventListener("click", (e) => { if (e.target === ui.itemView) closeItem(); });
$("#item-close").addEventListener("click", closeItem);
$("#item-prev").addEventListener("click", () => showItem(state.current - 1));
$("#item-next").addEventListener("click", () => showItem(state.current + 1));
$("#item-similar").addEventListener("click", () => {
  const r = state.results[state.current];
  closeItem();
  if (r) searchLike(r.item);
});
$("#item-delete").addEventListener("click", () => {
  const r = state.results[state.current];
  if (r) deleteItem(r.item);
});

// ---------------------------------------------------------------- delete

function confirmDialog(title, text, okLabel = "Delete") {
  $("#confirm-title").textContent = title;
  $("#confirm-text").textContent = text;
  $("#confirm-ok").textContent = okLabel;
  ui.confirmView.returnValue = "";
  ui.confirmView.showModal();
  return new Promise((resolve) => {
    ui.confirmView.addEventListener("close", () => resolve(ui.confirmView.returnValue === "ok"), { once: true });
  });
}

async function deleteItem(item) {
  const name = displayName(item);
  const ok = await confirmDialog(`Delete “${name}”?`, item.stored
    ? `It is removed from “${state.collection}”, with the copy imgfind stored. This cannot be undone.`
    : `It is removed from “${state.collection}”. The original file on disk is not touched.`);
  if (!ok) return;
  try {
    await api(itemPath(item.id), { method: "DELETE" });
  } catch (err) {
    showError(err, `Could not delete ${name}`);
    return;
  }
  const index = state.results.findIndex((r) => r.item.id === item.id);
  if (index >= 0) state.results.splice(index, 1);
  if (!state.query) state.total = Math.max(0, state.total - 1);
  setCount(Math.max(0, state.count - 1));
  if (ui.itemView.open) {
    if (state.results.length) showItem(Math.min(index, state.results.length - 1));
    else closeItem();
  }
  const node = ui.gallery.querySelector(`.card[data-id="${CSS.escape(item.id)}"]`);
  const next = node?.nextElementSibling || node?.previousElementSibling;
  renderResults({ append: false, newResults: state.results, tookMs: undefined });
  if (!ui.itemView.open && next) ui.gallery.querySelector(`.card[data-id="${CSS.escape(next.dataset.id)}"]`)?.focus();
  toast(`${name} was deleted.`);
}

// ---------------------------------------------------------------- gallery events

ui.gallery.addEventListener("click", (e) => {
  const cardNode = e.target.closest(".card:not(.skeleton)");
  if (!cardNode) return;
  const index = Number(cardNode.dataset.index);
  const r = state.results[index];
  if (!r) return;
  const action = e.target.closest("[data-action]")?.dataset.action;
  if (action === "similar") searchLike(r.item);
  else if (action === "delete") deleteItem(r.item);
  else openItem(index);
});

ui.gallery.addEventListener("keydown", (e) => {
  const cardNode = e.target.closest(".card");
  if (!cardNode || e.target !== cardNode) return;
  const index = Number(cardNode.dataset.index);
  if (e.key === "Enter" || e.key === " ") { e.preventDefault(); openItem(index); }
  else if (e.key === "Delete") { e.preventDefault(); deleteItem(state.results[index].item); }
});

ui.loadMore.addEventListener("click", () => run({ append: true }));

// ---------------------------------------------------------------- upload

function openUpload(files) {
  if (!state.collection) {
    toast("Create a collection first.", { error: true });
    return;
  }
  $("#upload-collection").textContent = state.collection;
  if (!state.uploads.some((u) => u.state === "uploading")) {
    state.uploads = [];
    $("#upload-list").replaceChildren();
  }
  if (files?.length) queueFiles(files);
  if (!ui.uploadView.open) ui.uploadView.showModal();
}

function queueFiles(files) {
  for (const file of files) {
    const progress = el("progress", { max: "100", value: "0", "aria-label": `Upload progress of ${file.name}` });
    const stateNode = el("span", { class: "fstate", text: formatBytes(file.size) });
    const row = el("li", { class: "upload-row" }, el("span", { class: "fname", title: file.name, text: file.name }), stateNode, progress);
    state.uploads.push({ file, row, progress, stateNode, state: "queued" });
    $("#upload-list").append(row);
  }
  updateUploadButton();
}

function updateUploadButton() {
  const queued = state.uploads.filter((u) => u.state === "queued").length;
  const btn = $("#upload-start");
  btn.disabled = queued === 0;
  btn.textContent = queued ? `Upload ${plural(queued, "image")}` : "Upload";
}

function parseUploadMeta() {
  const raw = $("#upload-meta").value.trim();
  const errNode = $("#upload-meta-error");
  errNode.hidden = true;
  if (!raw) return { ok: true, value: null };
  try {
    const value = JSON.parse(raw);
    if (!value || typeof value !== "object" || Array.isArray(value)) throw new Error("it must be a JSON object like {\"album\": \"x\"}");
    return { ok: true, value: raw };
  } catch (e) {
    errNode.textContent = `Metadata is not valid JSON: ${e.message}`;
    errNode.hidden = false;
    return { ok: false };
  }
}

function uploadOne(u, metadata) {
  return new Promise((resolve) => {
    const form = new FormData();
    form.append("file", u.file, u.file.name);
    if (metadata) form.append("metadata", metadata);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `${colPath()}/items`);
    for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
    u.state = "uploading";
    u.stateNode.textContent = "0%";
    xhr.upload.addEventListener("progress", (e) => {
      if (!e.lengthComputable) return;
      // The last stretch is the server decoding and embedding, so stop at 95% until it answers.
      const pct = Math.round((e.loaded / e.total) * 95);
      u.progress.value = pct;
      u.stateNode.textContent = pct >= 95 ? "Indexing…" : `${pct}%`;
    });
    const fail = (err) => {
      u.state = "failed";
      u.row.classList.add("failed");
      u.stateNode.textContent = "Failed";
      u.row.append(el("span", { class: "ferror", role: "alert", text: explain(err) }));
      resolve(err);
    };
    xhr.addEventListener("load", () => {
      let data = null;
      try { data = JSON.parse(xhr.responseText); } catch { data = null; }
      if (xhr.status >= 200 && xhr.status < 300) {
        u.state = "done";
        u.row.classList.add("done");
        u.progress.value = 100;
        u.stateNode.textContent = "Added ✓";
        resolve(null);
      } else {
        fail(errorFrom(xhr.status, data, xhr.statusText));
      }
    });
    xhr.addEventListener("error", () => fail(new ApiError(0, "network", "Upload failed: the server could not be reached.")));
    xhr.send(form);
  });
}

async function startUploads() {
  const meta = parseUploadMeta();
  if (!meta.ok) { $("#upload-meta").focus(); return; }
  const queue = state.uploads.filter((u) => u.state === "queued");
  if (!queue.length) return;
  const btn = $("#upload-start");
  btn.disabled = true;
  btn.setAttribute("aria-busy", "true");
  let added = 0, failed = 0, unauthorized = null;
  // Two at a time: keeps the server's embedder busy without flooding it.
  const workers = Array.from({ length: Math.min(2, queue.length) }, async () => {
    while (queue.length) {
      const u = queue.shift();
      const err = await uploadOne(u, meta.value);
      if (err) { failed++; if (err.status === 401) unauthorized = err; } else added++;
    }
  });
  await Promise.all(workers);
  btn.removeAttribute("aria-busy");
  updateUploadButton();
  if (added) toast(`${plural(added, "image")} added to ${state.collection}.`, { title: "Upload finished" });
  if (failed) {
    if (unauthorized) showError(unauthorized, `${plural(failed, "upload")} failed`);
    else toast("See the list for what went wrong with each file.", { title: `${plural(failed, "upload")} failed`, error: true });
  }
  await refreshCount();
  if (added) {
    if (!state.query) run();
    loadFields().then(renderFilters);
  }
}

$("#add-btn").addEventListener("click", () => openUpload());
$("#upload-files").addEventListener("change", (e) => {
  queueFiles([...e.target.files]);
  e.target.value = "";
});
$("#upload-start").addEventListener("click", startUploads);
$("#upload-meta").addEventListener("input", () => { $("#upload-meta-error").hidden = true; });
const uploadDrop = $("#upload-drop");
uploadDrop.addEventListener("dragover", (e) => { e.preventDefault(); e.stopPropagation(); uploadDrop.classList.add("over"); });
uploadDrop.addEventListener("dragleave", () => uploadDrop.classList.remove("over"));
uploadDrop.addEventListener("drop", (e) => {
  e.preventDefault();
  e.stopPropagation();
  uploadDrop.classList.remove("over");
  queueFiles([...e.dataTransfer.files]);
});

// ---------------------------------------------------------------- settings

function openSettings() {
  $("#api-key").value = localStorage.getItem(KEY_STORE) || "";
  if (!ui.settingsView.open) ui.settingsView.showModal();
  $("#api-key").focus();
}

function renderKeyDot() {
  const key = localStorage.getItem(KEY_STORE);
  $("#key-dot").hidden = !key;
  // Image tags cannot send the Authorization header; the server accepts this cookie
  // for reads only, so thumbnails load when the server protects reads.
  document.cookie = key
    ? `imgfind_key=${encodeURIComponent(key)}; path=/; SameSite=Strict`
    : "imgfind_key=; path=/; max-age=0; SameSite=Strict";
}

$("#settings-btn").addEventListener("click", openSettings);
$("#settings-form").addEventListener("submit", () => {
  const key = $("#api-key").value.trim();
  if (key) localStorage.setItem(KEY_STORE, key);
  else localStorage.removeItem(KEY_STORE);
  renderKeyDot();
  toast(key ? "API key saved in this browser." : "API key forgotten.");
});
$("#api-key-clear").addEventListener("click", () => {
  localStorage.removeItem(KEY_STORE);
  $("#api-key").value = "";
  renderKeyDot();
  ui.settingsView.close();
  toast("API key forgotten.");
});

for (const dialog of document.querySelectorAll("dialog")) {
  dialog.addEventListener("close", () => {
    if (ui.toasts.parentElement === dialog) document.body.append(ui.toasts);
  });
}
for (const btn of document.querySelectorAll("dialog [data-close]")) {
  btn.addEventListener("click", () => btn.closest("dialog").close());
}

// ---------------------------------------------------------------- page-wide drag and drop, paste

let dragDepth = 0;
const hasFiles = (e) => [...(e.dataTransfer?.types || [])].includes("Files");
const anyDialogOpen = () => [...document.querySelectorAll("dialog")].some((d) => d.open);

window.addEventListener("dragenter", (e) => {
  if (!hasFiles(e) || anyDialogOpen() || !state.collection) return;
  dragDepth++;
  ui.overlay.hidden = false;
});
window.addEventListener("dragover", (e) => {
  if (!hasFiles(e)) return;
  e.preventDefault();
  for (const z of ui.overlay.querySelectorAll(".drop-zone")) z.classList.toggle("over", z.contains(e.target));
});
window.addEventListener("dragleave", () => {
  dragDepth = Math.max(0, dragDepth - 1);
  if (dragDepth === 0) ui.overlay.hidden = true;
});
window.addEventListener("drop", (e) => {
  if (!hasFiles(e)) return;
  e.preventDefault();
  dragDepth = 0;
  ui.overlay.hidden = true;
  if (anyDialogOpen() || !state.collection) return;
  const files = [...e.dataTransfer.files];
  const zone = e.target.closest?.(".drop-zone")?.dataset.drop;
  if (zone === "add") openUpload(files);
  else searchImage(files[0]);
});

window.addEventListener("paste", (e) => {
  if (anyDialogOpen() || !state.collection) return;
  const file = [...(e.clipboardData?.files || [])].find((f) => f.type.startsWith("image/"));
  if (file) { e.preventDefault(); searchImage(file); }
});

// ---------------------------------------------------------------- top bar

ui.form.addEventListener("submit", (e) => {
  e.preventDefault();
  searchText(ui.q.value);
});
ui.q.addEventListener("search", () => { if (!ui.q.value && state.query?.kind === "text") searchText(""); });
$("#image-search-btn").addEventListener("click", () => ui.searchFile.click());
ui.searchFile.addEventListener("change", () => {
  searchImage(ui.searchFile.files[0]);
  ui.searchFile.value = "";
});
ui.k.addEventListener("change", () => {
  localStorage.setItem(K_STORE, ui.k.value);
  if (state.query) run();
});
ui.collection.addEventListener("change", () => selectCollection(ui.collection.value));
ui.addFilter.addEventListener("click", () => addFilterRow());
ui.clearFilters.addEventListener("click", clearFilters);

document.addEventListener("keydown", (e) => {
  // "/" jumps to the search box, as on most search sites.
  if (e.key === "/" && !anyDialogOpen() && !e.target.matches("input, textarea, select")) {
    e.preventDefault();
    ui.q.focus();
  }
});

// ---------------------------------------------------------------- start

async function start() {
  const saved = localStorage.getItem(K_STORE);
  if (saved && [...ui.k.options].some((o) => o.value === saved)) ui.k.value = saved;
  else ui.k.value = "20";
  renderKeyDot();
  const h = readHash();
  state.filters = h.filters.filter((f) => Array.isArray(f) && f.length === 3)
    .map(([key, op, value]) => ({ key: String(key), op: OPS.some((o) => o.op === op) ? op : "$eq", value: String(value ?? "") }));
  if (h.q) { ui.q.value = h.q; state.query = { kind: "text", text: h.q }; }
  else if (h.like) state.query = { kind: "like", id: h.like, name: h.like };
  await loadCollections(h.c);
}

start();
