// Approval queue: read each held reply and why it was held, then approve, edit and approve,
// or reject (with an inline confirmation; no browser dialogs). New held replies appear live.
import { activityStream, get, post } from "../api.js";
import { $, busy, el, formatDate, notify, refreshPendingCount, shell, showError } from "../ui.js";

await shell("pending");

function card(item) {
  const text = el("pre", { class: "text", id: `text-${item.id}` }, item.text);
  const editor = el("textarea", { id: `edit-${item.id}`, class: "tall", hidden: true }, item.text);
  const editorLabel = el("label", { for: `edit-${item.id}`, hidden: true }, "Edited reply");
  const section = el("article", { class: "card", "aria-labelledby": `subject-${item.id}`, dataset: { id: item.id } });
  const buttons = el("div", { class: "actions" });

  async function decide(button, path, body, done) {
    await busy(button, async () => {
      try {
        await post(`/pending/${item.id}/${path}`, body);
        section.remove();
        notify("#message", done, "ok");
        refreshPendingCount();
        if (!document.querySelector("#pending article")) empty();
      } catch (err) {
        showError("#message", err);
      }
    });
  }

  const approve = el("button", { type: "button" }, "Approve and send");
  approve.addEventListener("click", () => {
    const edited = !editor.hidden && editor.value !== item.text;
    decide(approve, "approve", edited ? { text: editor.value } : undefined, edited ? `Edited reply to ${item.recipients.join(", ")} sent.` : `Reply to ${item.recipients.join(", ")} sent.`);
  });
  const edit = el("button", { type: "button", class: "secondary" }, "Edit");
  edit.addEventListener("click", () => {
    const editing = editor.hidden;
    editor.hidden = !editing;
    editorLabel.hidden = !editing;
    text.hidden = editing;
    edit.textContent = editing ? "Cancel edit" : "Edit";
    approve.textContent = editing ? "Approve edited reply" : "Approve and send";
    if (editing) editor.focus();
  });
  const reject = el("button", { type: "button", class: "secondary" }, "Reject");
  const confirmBox = el(
    "div",
    { class: "actions", hidden: true, role: "group", "aria-label": "Confirm rejection" },
    el("span", {}, "Reject this reply? Its text is erased and nothing is sent."),
  );
  const yes = el("button", { type: "button", class: "danger" }, "Yes, reject");
  const no = el("button", { type: "button", class: "secondary" }, "Keep it");
  confirmBox.append(yes, no);
  reject.addEventListener("click", () => {
    confirmBox.hidden = false;
    yes.focus();
  });
  no.addEventListener("click", () => {
    confirmBox.hidden = true;
    reject.focus();
  });
  yes.addEventListener("click", () => decide(yes, "reject", undefined, "Reply rejected; nothing was sent."));

  buttons.append(approve, edit, reject);
  section.append(
    el("h2", { id: `subject-${item.id}` }, item.subject || "(no subject)"),
    el(
      "dl",
      { class: "meta" },
      el("dt", {}, "Agent"),
      el("dd", {}, item.mailbox),
      el("dt", {}, "To"),
      el("dd", {}, item.recipients.join(", ")),
      el("dt", {}, "Held since"),
      el("dd", {}, formatDate(item.created_at)),
    ),
    el("h3", {}, "Why it was held"),
    item.reasons.length ? el("ul", { class: "findings" }, item.reasons.map((r) => el("li", {}, r))) : el("p", { class: "muted" }, "The agent's mode asks for approval of every reply."),
    el("h3", {}, "Reply"),
    text,
    editorLabel,
    editor,
    buttons,
    confirmBox,
  );
  return section;
}

function empty() {
  $("#pending").replaceChildren(el("div", { class: "empty" }, "Nothing is waiting for approval."));
}

/** The queue; with `onlyNew`, cards already shown are kept as they are (an edit in progress
 * is never wiped by a reply that arrives meanwhile) and new ones are added at the end. */
async function load({ onlyNew = false } = {}) {
  try {
    const items = await get("/pending");
    const list = $("#pending");
    list.removeAttribute("aria-busy");
    if (!onlyNew || !list.querySelector("article")) {
      if (items.length === 0) return empty();
      list.replaceChildren(...items.map(card));
      return;
    }
    const fresh = items.filter((item) => !list.querySelector(`article[data-id="${item.id}"]`));
    list.append(...fresh.map(card));
    if (fresh.length) notify("#message", `${fresh.length} new ${fresh.length === 1 ? "reply is" : "replies are"} waiting.`, "info");
  } catch (err) {
    showError("#message", err);
  }
}

load();
// A newly held reply appears without a reload (the activity stream says "queued").
const stop = activityStream(
  (item) => {
    if (item.action === "queued") {
      load({ onlyNew: true });
      refreshPendingCount();
    }
  },
  // Once the stream is open, look again: a reply held while it was connecting is not missed.
  (state) => state === "live" && load({ onlyNew: true }),
);
addEventListener("pagehide", stop);
