// Background jobs in dialogs: indexing a folder on the server (inside one of its
// --allow-path roots) here, re-embedding in reembed.js. Live progress, cancel, and the
// report when it ends; a running job's id is kept for the tab, so a reload picks its
// progress up again.

import { api, colPath } from "./api.js";
import { refreshCatalog, refreshCount } from "./collections.js";
import { $, el, plural } from "./dom.js";
import { showError, toast } from "./notify.js";
import { isSearch, run } from "./search.js";
import { state, ui } from "./state.js";

const JOB_STORE = "imgfind.job";
const POLL_MS = 500;

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

/** A dialog's job panel (ids ``<prefix>-state``, ``-counts``, ``-bar``, ...): shows a
 * background job's progress, polls it until it ends, and cancels it. ``counts(job)``
 * says what was done; ``ended(job)`` runs once when it stops. */
export function jobPanel(prefix, { store, busy, counts, ended }) {
  const $p = (name) => $(`#${prefix}-${name}`);
  const words = { done: "Finished", cancelled: "Cancelled", failed: "Failed" };
  let timer = null;

  function render(job) {
    const panel = $p("progress");
    panel.hidden = false;
    const bar = $p("bar");
    const running = job.state === "running";
    if (job.total) { bar.max = job.total; bar.value = job.done; } else bar.removeAttribute("value");
    $p("state").textContent = running ? busy : words[job.state] || job.state;
    $p("counts").textContent = counts(job);
    $p("job-error").hidden = !job.error;
    $p("job-error").textContent = job.error?.message || "";
    $p("cancel").hidden = !running;
    $p("start").hidden = running;
    panel.dataset.state = job.state;
  }

  async function poll(id) {
    clearTimeout(timer);
    let job;
    try {
      job = await api(`api/jobs/${encodeURIComponent(id)}`);
    } catch (err) {
      sessionStorage.removeItem(store);
      showError(err, "Lost track of the background job");
      return;
    }
    render(job);
    if (job.state === "running") {
      timer = setTimeout(() => poll(id), POLL_MS);
      return;
    }
    sessionStorage.removeItem(store);
    await ended(job);
  }

  async function start(url, body) {
    const job = await api(url, { method: "POST", json: body });
    sessionStorage.setItem(store, job.id);
    render(job);
    poll(job.id);
  }

  async function cancel() {
    const id = sessionStorage.getItem(store);
    if (!id) return;
    try {
      render(await api(`api/jobs/${encodeURIComponent(id)}`, { method: "DELETE" }));
    } catch (err) {
      showError(err, "Could not stop the job");
    }
  }

  $p("cancel").addEventListener("click", cancel);
  return { start, poll, resume: () => sessionStorage.getItem(store) };
}

const indexJob = jobPanel("index", {
  store: JOB_STORE,
  busy: "Indexing…",
  counts: (job) => [
    job.total ? `${job.done.toLocaleString()} of ${plural(job.total, "file")}` : `${plural(job.done || 0, "file")} looked at`,
    job.indexed ? `${job.indexed.toLocaleString()} indexed` : null,
    job.skipped ? `${job.skipped.toLocaleString()} unchanged` : null,
    job.errors?.length ? plural(job.errors.length, "error") : null,
  ].filter(Boolean).join(" · "),
  async ended(job) {
    $("#index-path").disabled = false;
    await refreshCount();
    await refreshCatalog();
    if (!isSearch() && job.collection === state.collection) run({ push: false });
    toast(`${plural(job.indexed || 0, "image")} indexed.`, { title: `Index job ${$("#index-state").textContent.toLowerCase()}` });
  },
});

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
    $("#index-path").disabled = true;
    await indexJob.start(`${colPath()}/jobs/index`, { path });
  } catch (error) {
    $("#index-path").disabled = false;
    err.textContent = error.message;
    err.hidden = false;
  }
}

/** Picks up the progress of a job this tab started before a reload. */
export function resumeJob() {
  const id = indexJob.resume();
  if (id) { openIndex(); indexJob.poll(id); }
}

$("#index-form").addEventListener("submit", start);
