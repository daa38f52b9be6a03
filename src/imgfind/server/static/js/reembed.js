// Changing a collection's model without downtime: a background re-embed job with live
// progress; searches use the old vectors until the new ones take over in one step.

import { api, colPath } from "./api.js";
import { loadCollections } from "./collections.js";
import { $, el, plural } from "./dom.js";
import { jobPanel } from "./jobs.js";
import { toast } from "./notify.js";
import { state, ui } from "./state.js";

const job = jobPanel("reembed", {
  store: "imgfind.reembedJob",
  busy: "Re-embedding…",
  counts: (j) => (j.total ? `${j.done.toLocaleString()} of ${plural(j.total, "image")} embedded`
    : `${plural(j.done || 0, "image")} embedded`) + (j.switched ? ` · now ${j.model} (${j.dim}-d)` : ""),
  async ended(j) {
    $("#reembed-model").disabled = false;
    if (j.state === "done") {
      toast(`“${j.collection}” now searches with ${j.model}.`, { title: "Model changed" });
      await loadCollections(state.collection, { keepQuery: true, push: false });
      $("#reembed-current").textContent = j.model || "";
    }
  },
});

export async function openReembed() {
  const info = state.collections.find((c) => c.name === state.collection);
  $("#reembed-collection").textContent = state.collection;
  $("#reembed-current").textContent = info ? `${info.model} (${info.dim}-d)` : "";
  $("#reembed-error").hidden = true;
  try {
    const cfg = await api("api/gallery/config");
    $("#reembed-models").replaceChildren(...[...(cfg.models || []), ...(cfg.allow_paths || [])]
      .map((m) => el("option", { value: m })));
  } catch {
    $("#reembed-models").replaceChildren();
  }
  if (!ui.reembedView.open) ui.reembedView.showModal();
  $("#reembed-model").focus();
}

$("#reembed-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const value = $("#reembed-model").value.trim();
  const err = $("#reembed-error");
  if (!value) {
    err.textContent = "Type a model name or a model folder on the server.";
    err.hidden = false;
    return;
  }
  err.hidden = true;
  // An absolute path names a model folder on the server; anything else a model by name.
  const body = value.startsWith("/") ? { model_path: value } : { model: value };
  try {
    $("#reembed-model").disabled = true;
    await job.start(`${colPath()}/jobs/reembed`, body);
  } catch (error) {
    $("#reembed-model").disabled = false;
    err.textContent = error.message;
    err.hidden = false;
  }
});
