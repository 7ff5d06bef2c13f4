// Dashboard: credits, handled/escalated totals, what waits for approval, and every agent.
import { get } from "../api.js";
import { $, el, badge, formatNumber, notify, param, shell, showError, STATUS_HELP } from "../ui.js";

await shell("dashboard");
if (param("welcome")) notify("#message", "Welcome! Create your first agent to start answering mail.", "ok");

function mailboxItem(mailbox, stats) {
  const counts = stats || { handled: 0, escalated: 0 };
  const name = mailbox.display_name ? `${mailbox.display_name} · ` : "";
  const live = mailbox.status !== "deleted";
  return el(
    "li",
    { class: "card" },
    el(
      "div",
      { class: "mailbox-row" },
      el("span", { class: "address" }, `${name}${mailbox.address}`),
      badge(mailbox.status),
    ),
    el(
      "p",
      { class: "muted" },
      `${mailbox.kind === "hosted" ? "Hosted" : "External"} · ${mailbox.mode} · handled ${counts.handled} · escalated ${counts.escalated}`,
    ),
    el("p", {}, mailbox.status_reason || STATUS_HELP[mailbox.status] || ""),
    el(
      "div",
      { class: "actions" },
      el("a", { class: "button secondary", href: `/app/mailbox.html?id=${mailbox.id}` }, live ? "Configure" : "View", el("span", { class: "visually-hidden" }, ` ${mailbox.address}`)),
      live && el("a", { class: "button secondary", href: `/app/persona-test.html?id=${mailbox.id}` }, "Test persona", el("span", { class: "visually-hidden" }, ` of ${mailbox.address}`)),
      el("a", { class: "button secondary", href: `/app/activity.html?mailbox=${mailbox.id}` }, "Activity", el("span", { class: "visually-hidden" }, ` of ${mailbox.address}`)),
    ),
  );
}

async function load() {
  const includeDeleted = $("#show-deleted").checked;
  try {
    const [me, stats, mailboxes, pending] = await Promise.all([
      get("/me"),
      get("/stats"),
      get(`/mailboxes?include_deleted=${includeDeleted}`),
      get("/pending"),
    ]);
    $("#stat-credits").textContent = formatNumber(me.remaining_credits);
    $("#stat-handled").textContent = formatNumber(stats.handled);
    $("#stat-escalated").textContent = formatNumber(stats.escalated);
    const pendingLink = el("a", { href: "/app/pending.html" }, String(pending.length));
    $("#stat-pending").replaceChildren(pending.length ? pendingLink : "0");
    $("#stats").removeAttribute("aria-busy");
    const perMailbox = new Map(stats.mailboxes.map((m) => [m.id, m]));
    const list = $("#mailboxes");
    list.removeAttribute("aria-busy");
    if (mailboxes.length === 0) {
      list.replaceChildren(
        el(
          "div",
          { class: "empty" },
          el("p", {}, "You have no agents yet."),
          el("a", { class: "button", href: "/app/new.html" }, "Create your first agent"),
        ),
      );
      return;
    }
    list.replaceChildren(el("ul", { class: "mailboxes" }, mailboxes.map((m) => mailboxItem(m, perMailbox.get(m.id)))));
    if (me.remaining_credits !== null && me.remaining_credits <= 0) {
      notify("#message", "You are out of credits: your agents are paused until you buy more on the Billing page.", "error");
    }
  } catch (err) {
    showError("#message", err);
  }
}

$("#show-deleted").addEventListener("change", load);
load();
