// Toasts, the error banner and the confirm dialog: how the page talks back to people.

import { $, el, icon } from "./dom.js";
import { openSettings } from "./settings.js";
import { ui } from "./state.js";

// ---------------------------------------------------------------- toasts and banner

export function toast(message, { title, error = false, action } = {}) {
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

export function explain(err) {
  // The server's 401 text is written for API clients; say what to do in this page instead.
  if (err.status === 401) return "This server needs an API key for changes. Set it to continue.";
  if (err.status === 403) return `${err.message} — this API key is not allowed to do that.`;
  return err.message;
}

export function showError(err, title) {
  const action = err.status === 401 ? { label: "Set API key", run: openSettings } : undefined;
  toast(explain(err), { title, error: true, action });
}

export function showBanner(err, title) {
  ui.banner.replaceChildren(el("div", {}, el("strong", { text: title }), el("div", { text: explain(err) })));
  ui.banner.hidden = false;
}

/** Asks to confirm; ``typed`` (e.g. a collection's name) must be typed to enable OK. */
export function confirmDialog(title, text, okLabel = "Delete", typed = null) {
  $("#confirm-title").textContent = title;
  $("#confirm-text").textContent = text;
  $("#confirm-ok").textContent = okLabel;
  const wrap = $("#confirm-typed-wrap");
  const input = $("#confirm-typed");
  wrap.hidden = typed === null;
  input.value = "";
  $("#confirm-typed-name").textContent = typed ?? "";
  $("#confirm-ok").disabled = typed !== null;
  input.oninput = () => { $("#confirm-ok").disabled = input.value !== typed; };
  ui.confirmView.returnValue = "";
  ui.confirmView.showModal();
  if (typed !== null) input.focus();
  return new Promise((resolve) => {
    ui.confirmView.addEventListener("close", () => resolve(ui.confirmView.returnValue === "ok"), { once: true });
  });
}
