// The API key dialog, and closing behaviour shared by all dialogs.

import { $ } from "./dom.js";
import { toast } from "./notify.js";
import { KEY_STORE, ui } from "./state.js";

// ---------------------------------------------------------------- settings

export function openSettings() {
  $("#api-key").value = localStorage.getItem(KEY_STORE) || "";
  if (!ui.settingsView.open) ui.settingsView.showModal();
  $("#api-key").focus();
}

export function renderKeyDot() {
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
