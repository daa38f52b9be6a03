// Indexing a folder on the server (inside one of its --allow-path roots) as a
// background job: live progress, cancel, and the report when it ends. A running job's
// id is kept for the tab, so a reload picks its progress up again.

import { api, colPath } from "./api.js";
import { refreshCatalog, refreshCount } from "./collections.js";
import { $, el, plural } from "./dom.js";
import { showError, toast } from "./notify.js";
import { isSearch, run } from "./search.js";
import { state, ui } from "./state.js";

const JOB_STORE = "imgfind.job";
const POLL_MS = 500;
let timer = null;

export async function openIndex() {
  $("#index-collection").textContent = state.collection;
  $("#index-error").hidden = true;
  const roots = $("#index-roots");
  try {
    const cfg = await api("api/gallery/config");
    const list = cfg.allow_paths || [];
    $("#index-paths").replaceChildren(...list.map((p) => el("option", { value: p })));
    roots.replaceChildren(list.length
      ? el("span", {}, "Folders this server may index: ", list.map((p, i) => [i ? ", " : "", el("code", { text: p })]))
      : el("span", {}, "This server indexes no server-side folders: start it with ", el("code", { text: "--allow-path DIR" }), "."));
    $("#index-start").disabled = !list.length;
  } catch (err) {
    roots.textContent = err.message;
  }
  if (!ui.indexView.open) ui.indexView.showModal();
  $("#index-path").focus();
}

function renderJob(job) {
  const panel = $("#index-progress");
  panel.hidden = false;
  const bar = $("#index-bar");
  const running = job.state === "running";
  if (job.total) { bar.max = job.total; bar.value = job.done; } else bar.removeAttribute("value");
  const counts = [
    job.total ? `${job.done.toLocaleString()} of ${plural(job.total, "file")}` : `${plural(job.done || 0, "file")} looked at`,
    job.indexed ? `${job.indexed.toLocaleString()} indexed` : null,
    job.skipped ? `${job.skipped.toLocaleString()} unchanged` : null,
    job.errors?.length ? plural(job.errors.length, "error") : null,
  ].filter(Boolean).join(" · ");
  const words = { running: "Indexing…", done: "Finished", cancelled: "Cancelled", failed: "Failed" };
  $("#index-state").textContent = words[job.state] || job.state;
  $("#index-counts").textContent = counts;
  $("#index-job-error").hidden = !job.error;
  $("#index-job-error").textContent = job.error?.message || "";
  $("#index-cancel").hidden = !running;
  $("#index-start").hidden = running;
  $("#index-path").disabled = running;
  panel.dataset.state = job.state;
}

async function poll(id) {
  clearTimeout(timer);
  let job;
  try {
    job = await api(`api/jobs/${encodeURIComponent(id)}`);
  } catch (err) {
    sessionStorage.removeItem(JOB_STORE);
    showError(err, "Lost track of the index job");
    return;
  }
  renderJob(job);
  if (job.state === "running") {
    timer = setTimeout(() => poll(id), POLL_MS);
    return;
  }
  sessionStorage.removeItem(JOB_STORE);
  await refreshCount();
  await refreshCatalog();
  if (!isSearch() && job.collection === state.collection) run({ push: false });
  toast(`${plural(job.indexed || 0, "image")} indexed.`, { title: `Index job ${$("#index-state").textContent.toLowerCase()}` });
}

async function start(e) {
  e.preventDefault();
  const path = $("#index-path").value.trim();
  const err = $("#index-error");
  if (!path) {
    err.textContent = "Type the folder to index.";
    err.hidden = false;
    return;
  }
  err.hidden = true;
  try {
    const job = await api(`${colPath()}/jobs/index`, { method: "POST", json: { path } });
    sessionStorage.setItem(JOB_STORE, job.id);
    renderJob(job);
    poll(job.id);
  } catch (error) {
    err.textContent = error.message;
    err.hidden = false;
  }
}

async function cancel() {
  const id = sessionStorage.getItem(JOB_STORE);
  if (!id) return;
  try {
    renderJob(await api(`api/jobs/${encodeURIComponent(id)}`, { method: "DELETE" }));
  } catch (err) {
    showError(err, "Could not cancel the index job");
  }
}

/** Picks up the progress of a job this tab started before a reload. */
export function resumeJob() {
  const id = sessionStorage.getItem(JOB_STORE);
  if (id) { openIndex(); poll(id); }
}

$("#index-form").addEventListener("submit", start);
$("#index-cancel").addEventListener("click", cancel);
