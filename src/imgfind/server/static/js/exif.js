// Reading camera facts out of EXIF: names, rationals, GPS.

import { $, formatDate } from "./dom.js";

export const EXIF_FIELDS = [
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
export function flatten(obj, prefix = "", out = {}) {
  for (const [k, v] of Object.entries(obj || {})) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === "object" && !Array.isArray(v)) flatten(v, key, out);
    else out[key] = v;
  }
  return out;
}

export function pick(flat, ...names) {
  for (const name of names) {
    const want = name.toLowerCase();
    for (const [k, v] of Object.entries(flat)) {
      if (k.split(".").pop().toLowerCase() === want && v !== null && v !== "") return v;
    }
  }
  return null;
}

// EXIF rationals arrive as numbers, "1/250" strings or [num, den] pairs.
export function num(v) {
  if (v === null || v === undefined) return null;
  if (typeof v === "number") return v;
  if (Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === "number")) return v[1] ? v[0] / v[1] : null;
  const m = String(v).match(/^\s*(-?[\d.]+)\s*\/\s*([\d.]+)\s*$/);
  if (m) return Number(m[2]) ? Number(m[1]) / Number(m[2]) : null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
}

export function degrees(v) {
  if (Array.isArray(v) && v.length === 3) {
    const [d, m, s] = v.map(num);
    return [d, m, s].some((x) => x === null) ? null : d + m / 60 + s / 3600;
  }
  return num(v);
}

export const FILE_LABELS = { path: "Path", name: "Name", dir: "Folder", ext: "Extension", size: "Size",
  mtime: "Modified", ctime: "Changed" };

export function findGps(item) {
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
