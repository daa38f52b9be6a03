// DOM building and formatting helpers shared by every view.

export const $ = (sel, root = document) => root.querySelector(sel);

// ---------------------------------------------------------------- small helpers

export function el(tag, attrs = {}, ...children) {
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
export const ICONS = {
  similar: '<circle cx="11" cy="11" r="7"/><path d="m20 20-3.5-3.5M8 11h6M11 8v6"/>',
  open: '<path d="M4 12s3-7 8-7 8 7 8 7-3 7-8 7-8-7-8-7z"/><circle cx="12" cy="12" r="2.5"/>',
  trash: '<path d="M4 7h16M10 11v6M14 11v6M6 7l1 12a2 2 0 0 0 2 2h6a2 2 0 0 0 2-2l1-12M9 7V4h6v3"/>',
  close: '<path d="M6 6l12 12M18 6 6 18"/>',
  check: '<path d="m5 12 5 5 9-10"/>',
  plus: '<circle cx="12" cy="12" r="8"/><path d="M12 8v8M8 12h8"/>',
  minus: '<circle cx="12" cy="12" r="8"/><path d="M8 12h8"/>',
  image: '<rect x="3" y="5" width="18" height="14" rx="2"/><circle cx="9" cy="10" r="1.8"/><path d="m21 16-5-5-9 8"/>',
};

export function icon(name) {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("class", "icon");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.innerHTML = ICONS[name];
  return svg;
}

export const BROKEN_IMAGE = "data:image/svg+xml," + encodeURIComponent(
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" fill="none" stroke="#8a93a3" ' +
  'stroke-width="1.5" stroke-linecap="round" stroke-linejoin="round">' + ICONS.image + "</svg>");

/** What an item is called: its file name (uploads keep theirs), else the end of its source. */
export function displayName(item) {
  if (item.file?.name) return String(item.file.name);
  const src = item.source || item.id;
  const name = src.startsWith("upload:") ? src.slice(7) : src.split(/[\\/]/).filter(Boolean).pop();
  return name || item.id;
}

export function formatBytes(n) {
  if (typeof n !== "number") return String(n);
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i && n < 10 ? 1 : 0)} ${units[i]}`;
}

export function formatDate(v) {
  if (v === null || v === undefined || v === "") return null;
  const s = String(v).replace(/^(\d{4}):(\d{2}):(\d{2})/, "$1-$2-$3");  // EXIF "2023:07:14 18:22:05"
  const d = new Date(typeof v === "number" ? v * 1000 : s.replace(" ", "T"));
  if (Number.isNaN(d.getTime())) return String(v);
  const hasTime = typeof v === "number" || /[T ]\d{2}:\d{2}/.test(s);
  return d.toLocaleString(undefined, hasTime
    ? { dateStyle: "medium", timeStyle: "short" } : { dateStyle: "medium" });
}

export function plural(n, word) {
  return `${n.toLocaleString()} ${word}${n === 1 ? "" : "s"}`;
}

/** The date an item sorts by in the timeline: when it was taken, else when it was added. */
export function itemDate(item) {
  const v = item.taken || item.added;
  if (!v) return null;
  const d = new Date(String(v).replace(/^(\d{4}):(\d{2}):(\d{2})/, "$1-$2-$3").replace(" ", "T"));
  return Number.isNaN(d.getTime()) ? null : d;
}
