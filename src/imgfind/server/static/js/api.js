// REST client: fetch with the API key, typed errors, and the URL of each resource.

import { $ } from "./dom.js";
import { KEY_STORE, state } from "./state.js";

// ---------------------------------------------------------------- API

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function authHeaders() {
  const key = localStorage.getItem(KEY_STORE);
  return key ? { Authorization: `Bearer ${key}` } : {};
}

export function errorFrom(status, data, statusText = "") {
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

export async function api(path, { method = "GET", json, form } = {}) {
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

export const colPath = (name = state.collection) => `api/collections/${encodeURIComponent(name)}`;
export const itemPath = (id) => `${colPath()}/items/${encodeURIComponent(id)}`;
export const thumbUrl = (id) => `${itemPath(id)}/thumbnail`;
export const imageUrl = (id) => `${itemPath(id)}/image`;
