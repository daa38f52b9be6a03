// Adding images by upload, with per-file progress and errors.

import { ApiError, authHeaders, colPath, errorFrom } from "./api.js";
import { loadFields, refreshCount } from "./collections.js";
import { $, el, formatBytes, plural } from "./dom.js";
import { renderFilters } from "./filters.js";
import { explain, showError, toast } from "./notify.js";
import { run } from "./search.js";
import { state, ui } from "./state.js";

// ---------------------------------------------------------------- upload

export function openUpload(files) {
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

export function queueFiles(files) {
  for (const file of files) {
    const progress = el("progress", { max: "100", value: "0", "aria-label": `Upload progress of ${file.name}` });
    const stateNode = el("span", { class: "fstate", text: formatBytes(file.size) });
    const row = el("li", { class: "upload-row" }, el("span", { class: "fname", title: file.name, text: file.name }), stateNode, progress);
    state.uploads.push({ file, row, progress, stateNode, state: "queued" });
    $("#upload-list").append(row);
  }
  updateUploadButton();
}

export function updateUploadButton() {
  const queued = state.uploads.filter((u) => u.state === "queued").length;
  const btn = $("#upload-start");
  btn.disabled = queued === 0;
  btn.textContent = queued ? `Upload ${plural(queued, "image")}` : "Upload";
}

export function parseUploadMeta() {
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

export function uploadOne(u, metadata) {
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

export async function startUploads() {
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
