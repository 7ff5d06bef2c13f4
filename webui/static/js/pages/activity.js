// Activity log of one agent: paginated, filtered by action, and live over Server-Sent Events.
// The log is metadata only. A reply's text is shown ("View reply") only where mailhook keeps
// it: the sandbox outbox (a delivered reply's text is not kept); a reply waiting for approval
// links to the approval page instead.
import { activityStream, get } from "../api.js";
import { $, ACTIONS, badge, el, formatDate, idParam, refreshPendingCount, shell, showError } from "../ui.js";

await shell("activity");
const SIZE = 20;
const state = { mailbox: idParam("mailbox"), action: "", page: 1, pages: 1, total: 0, live: "" };

$("#action").append(...ACTIONS.map((a) => el("option", { value: a }, a.replace(/_/g, " "))));

// What a row shows that can change: an entry's time, recipient and reason never do.
function rowKey(item) {
  return `${item.id}:${item.action}:${item.reply_outbox_id ?? ""}`;
}

function row(item, fresh = false) {
  return el(
    "tr",
    { class: fresh ? "fresh" : undefined, dataset: { id: item.id, key: rowKey(item) } },
    el("td", { "data-label": "When" }, el("time", { datetime: item.created_at }, formatDate(item.created_at))),
    el("td", { "data-label": "Action" }, badge(item.action)),
    el("td", { "data-label": "Recipient", class: "wrap" }, item.recipient || "—"),
    el("td", { "data-label": "Reason", class: "wrap" }, item.reason || "—"),
    el("td", { "data-label": "Links" }, links(item)),
  );
}

function links(item) {
  if (item.action === "queued") return el("a", { href: "/app/pending.html" }, "Review in approvals");
  if (!item.reply_outbox_id) return "";
  const panel = `reply-${item.id}`;
  return el("button", { type: "button", class: "secondary", "aria-expanded": "false", "aria-controls": panel, onclick: (event) => toggleReply(event.currentTarget, item, panel) }, "View reply");
}

// The reply opens in a row of its own under the entry; its text is shown as text, never as HTML.
async function toggleReply(button, item, panel) {
  const entry = button.closest("tr");
  const open = document.getElementById(panel);
  if (open) {
    open.remove();
    button.setAttribute("aria-expanded", "false");
    return;
  }
  button.disabled = true;
  try {
    const reply = await get(`/outbox/${item.reply_outbox_id}`);
    const heading = el("dl", { class: "reply-head" },
      el("dt", {}, "Subject"), el("dd", {}, reply.subject || "—"),
      el("dt", {}, "To"), el("dd", {}, reply.to.join(", ") || "—"),
      ...(reply.cc.length ? [el("dt", {}, "Cc"), el("dd", {}, reply.cc.join(", "))] : []),
    );
    const text = el("pre", { tabindex: "0", "aria-label": `Reply to ${reply.recipients.join(", ")}` }, reply.text);
    const raw = el("details", {}, el("summary", {}, "Whole message (RFC 5322 source)"), el("pre", {}, reply.message));
    const note = el("p", { class: "hint" }, "Kept in the sandbox outbox: in sandbox mode replies are stored here instead of being sent.");
    entry.after(el("tr", { id: panel, class: "reply-row" }, el("td", { colspan: "5" }, note, heading, text, raw)));
    button.setAttribute("aria-expanded", "true");
    text.focus();
  } catch (err) {
    showError("#message", err);
  } finally {
    button.disabled = false;
  }
}

function showPageInfo() {
  state.pages = Math.max(1, Math.ceil(state.total / SIZE));
  $("#page-info").textContent = `Page ${state.page} of ${state.pages} (${state.total} ${state.total === 1 ? "entry" : "entries"})`;
  $("#prev").disabled = state.page <= 1;
  $("#next").disabled = state.page >= state.pages;
}

function showEmpty(message) {
  $("#log").hidden = true;
  const empty = $("#empty");
  empty.hidden = false;
  empty.textContent = message;
}

let loads = 0;

async function load() {
  if (!state.mailbox) return;
  const query = new URLSearchParams({ page: state.page, size: SIZE });
  if (state.action) query.set("action", state.action);
  // Only the newest request may draw: an older one (say, page 1 asked for while the stream
  // was opening) can answer after the page the user has since turned to.
  const ticket = ++loads;
  try {
    const page = await get(`/mailboxes/${state.mailbox}/activity?${query}`);
    if (ticket !== loads) return;
    state.total = page.total;
    showPageInfo();
    if (page.items.length === 0) {
      showEmpty(state.action ? `No "${state.action.replace(/_/g, " ")}" entries for this agent.` : "Nothing has happened yet. Mail this agent receives shows up here as it is handled.");
      return;
    }
    $("#empty").hidden = true;
    $("#log").hidden = false;
    // A reload that brings the rows already shown (the stream reloads once when it opens) leaves
    // the table alone: a redraw under the pointer would swallow a click that had begun, and would
    // close an open reply and drop the focus.
    const shown = [...$("#log tbody").querySelectorAll("tr[data-key]")].map((tr) => tr.dataset.key);
    if (shown.join(" ") === page.items.map(rowKey).join(" ")) return;
    $("#log tbody").replaceChildren(...page.items.map((item) => row(item)));
  } catch (err) {
    if (ticket === loads) showError("#message", err);
  }
}

function syncUrl() {
  const query = new URLSearchParams({ mailbox: state.mailbox });
  history.replaceState(null, "", `?${query}`);
}

$("#mailbox").addEventListener("change", () => {
  state.mailbox = Number($("#mailbox").value);
  state.page = 1;
  syncUrl();
  load();
});
$("#action").addEventListener("change", () => {
  state.action = $("#action").value;
  state.page = 1;
  load();
});
$("#filters").addEventListener("submit", (event) => event.preventDefault());
$("#prev").addEventListener("click", () => {
  state.page -= 1;
  load();
});
$("#next").addEventListener("click", () => {
  state.page += 1;
  load();
});

// --- live updates ----------------------------------------------------------------------------
const LIVE_TEXT = {
  live: "Live: new activity appears as it happens.",
  reconnecting: "Live updates interrupted; reconnecting…",
  unavailable: "Live updates are not available on this server; reload the page to see new activity.",
};

function onLiveState(next) {
  const changed = state.live !== next;
  state.live = next;
  if (!changed) return;
  $("#live").textContent = LIVE_TEXT[next];
  // A stream starts from the newest row when it opens: reload the page once it is open, so a
  // row written while it was connecting (or while it was down) is not missed.
  if (next === "live") load();
}

function onItem(item) {
  if (item.action === "queued" || item.action === "approved" || item.action === "rejected") refreshPendingCount();
  if (Number(item.mailbox_id) !== Number(state.mailbox)) return;
  if (state.action && item.action !== state.action) return;
  if (state.page !== 1) {
    $("#announce").textContent = "New activity on page 1.";
    return;
  }
  const body = $("#log tbody");
  if (body.querySelector(`tr[data-id="${CSS.escape(String(item.id))}"]`)) return;
  $("#empty").hidden = true;
  $("#log").hidden = false;
  body.prepend(row(item, true));
  while (body.rows.length > SIZE) body.lastElementChild.remove();
  state.total += 1;
  showPageInfo();
  $("#announce").textContent = `New activity: ${item.action.replace(/_/g, " ")}${item.recipient ? ` for ${item.recipient}` : ""}.`;
}

async function start() {
  try {
    const mailboxes = await get("/mailboxes?include_deleted=true");
    if (mailboxes.length === 0) {
      $("#filters").hidden = true;
      document.querySelector(".pager").hidden = true;
      showEmpty("You have no agents yet, so there is no activity.");
      $("#empty").append(" ", el("a", { href: "/app/new.html" }, "Create an agent"));
      return;
    }
    if (!mailboxes.some((m) => m.id === state.mailbox)) state.mailbox = mailboxes[0].id;
    $("#mailbox").replaceChildren(
      ...mailboxes.map((m) => el("option", { value: m.id, selected: m.id === state.mailbox }, m.status === "deleted" ? `${m.address} (deleted)` : m.address)),
    );
    await load();
    const stop = activityStream(onItem, onLiveState);
    addEventListener("pagehide", stop);
  } catch (err) {
    showError("#message", err);
  }
}

start();
