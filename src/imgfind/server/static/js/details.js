// What the item view says about an item: your metadata, text found in the image,
// camera, location, image and file facts, and every EXIF field.

import { $, el, formatBytes, formatDate } from "./dom.js";
import { EXIF_FIELDS, FILE_LABELS, findGps, flatten } from "./exif.js";

// OCR text (collections created with OCR): a string, or {text, lines: [{text, confidence}]}.
function ocrSection(ocr) {
  if (!ocr) return null;
  const text = typeof ocr === "string" ? ocr : ocr.text || (ocr.lines || []).map((l) => l.text).join("\n");
  if (!text || !text.trim()) return null;
  return section("Text in image", el("p", { class: "ocr-text", text }));
}

export function valueNode(v) {
  if (Array.isArray(v) && v.every((x) => x === null || typeof x !== "object")) {
    return el("span", {}, v.map((x) => el("span", { class: "tag", text: String(x) })));
  }
  if (v && typeof v === "object") return el("code", { text: JSON.stringify(v) });
  if (typeof v === "boolean") return v ? "yes" : "no";
  return String(v);
}

export function dl(rows) {
  const shown = rows.filter(([, v]) => v !== null && v !== undefined && v !== "");
  return el("dl", {}, shown.map(([k, v]) => [el("dt", { text: k }), el("dd", {}, v instanceof Node ? v : valueNode(v))]));
}

export function section(title, body) {
  return el("section", { "aria-label": title }, el("h3", { text: title }), body);
}

export function renderItemDetails(item) {
  const parts = [];
  const ocr = ocrSection(item.ocr);
  if (ocr) parts.push(ocr);
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
