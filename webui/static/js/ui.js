// Shared DOM helpers: element builder, messages (aria-live), the signed-in page shell.
// Text always goes in as text nodes (never innerHTML), so mail content cannot become markup.

import { clearToken, get, getToken, goToLogin } from "./api.js";

/** `el("a", {href: "/x", class: "y"}, "text", child)`; `on*` attributes become listeners. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      node.addEventListener(name.slice(2), value);
    } else if (name === "dataset") {
      Object.assign(node.dataset, value);
    } else {
      node.setAttribute(name, value === true ? "" : String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export const $ = (selector, root = document) => root.querySelector(selector);

export function param(name) {
  return new URLSearchParams(location.search).get(name);
}

/** A positive integer id from the query string, or null. */
export function idParam(name = "id") {
  const value = param(name);
  return value && /^[1-9]\d{0,17}$/.test(value) ? Number(value) : null;
}

/**
 * Show a message in a notice element (`role="status"` or `role="alert"` in the page, so screen
 * readers hear it). `kind`: "ok", "error" or "info".
 */
export function notify(target, message, kind = "info") {
  const box = typeof target === "string" ? $(target) : target;
  box.className = `notice notice-${kind}`;
  box.textContent = message;
}

export function clearNotice(target) {
  const box = typeof target === "string" ? $(target) : target;
  box.textContent = "";
}

/** The API's own words for an error (its `detail`), which is what the user needs to fix it. */
export function errorText(err) {
  return err && err.message ? err.message : "Something went wrong.";
}

export function showError(target, err) {
  notify(target, errorText(err), "error");
}

/** Mark a field invalid with a message tied to it by aria-describedby. */
export function fieldError(input, message) {
  const id = `${input.id}-error`;
  let box = document.getElementById(id);
  if (!message) {
    input.removeAttribute("aria-invalid");
    if (box) box.textContent = "";
    return;
  }
  if (!box) {
    box = el("div", { id, class: "field-error" });
    input.insertAdjacentElement("afterend", box);
    const described = input.getAttribute("aria-describedby");
    input.setAttribute("aria-describedby", described ? `${described} ${id}` : id);
  }
  input.setAttribute("aria-invalid", "true");
  box.textContent = message;
}

export function badge(value, label) {
  return el("span", { class: `badge badge-${String(value).replace(/[^a-z_]/g, "")}` }, label || value.replace(/_/g, " "));
}

export function formatDate(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

export function formatNumber(n) {
  return n === null || n === undefined ? "unlimited" : Number(n).toLocaleString();
}

/** Run `work` with the button disabled and marked busy; re-enabled afterwards. */
export async function busy(button, work) {
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

const NAV = [
  ["/app/", "Dashboard", "dashboard"],
  ["/app/new.html", "New agent", "new"],
  ["/app/activity.html", "Activity", "activity"],
  ["/app/pending.html", "Approvals", "pending"],
  ["/app/billing.html", "Billing", "billing"],
  ["/app/settings.html", "Settings", "settings"],
];

/**
 * Every signed-in page starts with `await shell(...)`: without a token the browser goes to the
 * login page and the promise never settles, so the rest of the page module never runs;
 * otherwise the header and navigation are drawn (with the number of replies waiting).
 */
export async function shell(current) {
  if (!getToken()) {
    goToLogin();
    await new Promise(() => {});
  }
  const pendingCount = el("span", { class: "count", hidden: true });
  const items = NAV.map(([href, label, key]) =>
    el(
      "li",
      {},
      el("a", { href, "aria-current": key === current ? "page" : undefined }, label, key === "pending" ? pendingCount : null),
    ),
  );
  const signOut = el(
    "button",
    {
      type: "button",
      onclick: () => {
        clearToken();
        location.assign("/app/login.html?reason=signed-out");
      },
    },
    "Sign out",
  );
  const header = el(
    "header",
    { class: "site-header" },
    el("nav", { "aria-label": "Main" }, el("ul", {}, el("li", {}, el("a", { href: "/app/", class: "brand" }, "mailhook")), items, el("li", {}, signOut))),
  );
  document.body.prepend(header);
  document.body.prepend(el("a", { href: "#main", class: "skip-link" }, "Skip to content"));
  refreshPendingCount(pendingCount);
  return { pendingCount };
}

export async function refreshPendingCount(badgeNode = $(".site-header .count")) {
  if (!badgeNode) return;
  try {
    const pending = await get("/pending");
    badgeNode.hidden = pending.length === 0;
    badgeNode.textContent = String(pending.length);
    badgeNode.setAttribute("aria-label", `${pending.length} waiting`);
  } catch {
    badgeNode.hidden = true;
  }
}

/** The mailbox status as words a user understands (the badge carries the raw value). */
export const STATUS_HELP = {
  active: "Answering mail.",
  inactive: "Paused: mail is received and logged but not answered.",
  pending_billing: "Out of credits: buy credits to resume.",
  error: "Not working: see the reason, fix it, then resume.",
  deleted: "Deleted.",
};

export const MODES = {
  autonomous: "Autonomous: replies are sent",
  monitored: "Monitored: replies are sent and you get a copy",
  gated: "Gated: you approve every reply",
  draft: "Draft: replies are kept as drafts, nothing is sent",
};

export const ACTIONS = [
  "replied",
  "drafted",
  "escalated",
  "no_action",
  "skipped",
  "queued",
  "approved",
  "rejected",
  "tested_persona",
  "error",
];

/** Poll interval choices the API accepts: 0 (IDLE), 1, or whole hours up to a day. */
export function pollOptions(selected) {
  const values = [0, 1, 60, 120, 180, 240, 360, 480, 720, 1440];
  if (!values.includes(selected)) values.push(selected);
  return values.map((v) =>
    el(
      "option",
      { value: v, selected: v === selected },
      v === 0 ? "Push (IMAP IDLE)" : v === 1 ? "Every minute" : v === 1440 ? "Once a day" : `Every ${v / 60} h`,
    ),
  );
}
