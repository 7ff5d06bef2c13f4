// One agent: an external mailbox's connection (servers, login, password; tested before saving),
// configuration (persona with a live token estimate, tone, rules, triggers, mode, poll interval,
// documents), persona history, pause/resume and delete.
import { del, get, patch, post } from "../api.js";
import { clearConnection, SERVER_FIELDS, testConnection } from "../connection.js";
import { $, badge, busy, el, fieldError, formatDate, idParam, MODES, notify, param, pollOptions, shell, showError, STATUS_HELP } from "../ui.js";
import { attachCounter } from "../tokens.js";

await shell("dashboard");
const id = idParam();
let mailbox = null;
let updateCounter = () => {};

const TEXT_FIELDS = ["display_name", "persona", "tone", "rules", "signature"];
const NUMBER_FIELDS = ["thread_depth", "max_output_tokens"];

function documentsText(documents) {
  if (typeof documents === "string") return documents;
  return documents.length ? JSON.stringify(documents, null, 2) : "";
}

/** The documents field as the API wants it, or an error message for the user. */
export function parseDocuments(text) {
  const value = text.trim();
  if (!value) return { value: [] };
  if (!value.startsWith("[")) {
    try {
      const url = new URL(value);
      if (url.protocol !== "https:" && url.protocol !== "http:") return { error: "The manifest URL must start with https:// or http://." };
    } catch {
      return { error: "Enter a JSON list (starting with [) or the URL of a manifest." };
    }
    return { value };
  }
  let list;
  try {
    list = JSON.parse(value);
  } catch (err) {
    return { error: `This is not valid JSON: ${err.message}` };
  }
  if (!Array.isArray(list)) return { error: "The documents must be a JSON list." };
  if (list.length > 50) return { error: `At most 50 documents (this list has ${list.length}).` };
  for (const [i, doc] of list.entries()) {
    const where = `Document ${i + 1}`;
    if (typeof doc !== "object" || doc === null || Array.isArray(doc)) return { error: `${where} must be an object with name, description and url.` };
    for (const key of ["name", "url"]) {
      if (typeof doc[key] !== "string" || !doc[key].trim()) return { error: `${where} needs a "${key}".` };
    }
    if (!/^https?:\/\//i.test(doc.url)) return { error: `${where}: the url must start with https:// or http://.` };
  }
  return { value: list };
}

function fill(row) {
  mailbox = row;
  $("#title").textContent = row.display_name ? `${row.display_name} (${row.address})` : row.address;
  document.title = `${row.address} · mailhook`;
  const summary = $("#summary");
  summary.removeAttribute("aria-busy");
  summary.replaceChildren(
    el(
      "dl",
      { class: "meta" },
      el("dt", {}, "Status"),
      el("dd", {}, badge(row.status), " ", row.status_reason || STATUS_HELP[row.status] || ""),
      el("dt", {}, "Kind"),
      el("dd", {}, row.kind === "hosted" ? "Hosted on this server" : `External: IMAP ${row.imap.host}:${row.imap.port}, SMTP ${row.smtp.host}:${row.smtp.port}`),
      el("dt", {}, "Created"),
      el("dd", {}, formatDate(row.created_at)),
    ),
    el(
      "div",
      { class: "actions" },
      row.status !== "deleted" && el("a", { class: "button secondary", href: `/app/persona-test.html?id=${row.id}` }, "Test my persona"),
      el("a", { class: "button secondary", href: `/app/activity.html?mailbox=${row.id}` }, "Activity"),
    ),
  );
  for (const field of TEXT_FIELDS) $(`#${field}`).value = row[field];
  for (const field of NUMBER_FIELDS) $(`#${field}`).value = row[field];
  $("#triggers").value = row.triggers.join("\n");
  $("#reply_all").checked = row.reply_all;
  $("#documents").value = documentsText(row.documents);
  $("#mode").replaceChildren(...Object.entries(MODES).map(([value, label]) => el("option", { value, selected: value === row.mode }, label)));
  $("#poll-field").hidden = row.kind !== "external";
  if (row.kind === "external") $("#poll_interval_minutes").replaceChildren(...pollOptions(row.poll_interval_minutes));
  const editable = row.status !== "deleted";
  $("#config").hidden = false;
  for (const control of $("#config").elements) control.disabled = !editable;
  updateCounter();
  renderLifecycle(row);
  $("#connection-section").hidden = row.kind !== "external" || row.status === "deleted";
}

/** Only the fields that changed, so saving never rewrites what someone else just set. */
function changes() {
  const out = {};
  for (const field of TEXT_FIELDS) if ($(`#${field}`).value !== mailbox[field]) out[field] = $(`#${field}`).value;
  for (const field of NUMBER_FIELDS) if (Number($(`#${field}`).value) !== mailbox[field]) out[field] = Number($(`#${field}`).value);
  const triggers = $("#triggers").value.split("\n").map((t) => t.trim()).filter(Boolean);
  if (JSON.stringify(triggers) !== JSON.stringify(mailbox.triggers)) out.triggers = triggers;
  if ($("#reply_all").checked !== mailbox.reply_all) out.reply_all = $("#reply_all").checked;
  if ($("#mode").value !== mailbox.mode) out.mode = $("#mode").value;
  if (mailbox.kind === "external" && Number($("#poll_interval_minutes").value) !== mailbox.poll_interval_minutes) {
    out.poll_interval_minutes = Number($("#poll_interval_minutes").value);
  }
  const docs = parseDocuments($("#documents").value);
  if (!docs.error && JSON.stringify(docs.value) !== JSON.stringify(mailbox.documents)) out.documents = docs.value;
  return out;
}

// Checked as it is typed (a JSON editor's habit), so the message is there before Save is pressed.
$("#documents").addEventListener("input", () => fieldError($("#documents"), parseDocuments($("#documents").value).error || ""));

$("#config").addEventListener("submit", async (event) => {
  event.preventDefault();
  const docs = parseDocuments($("#documents").value);
  fieldError($("#documents"), docs.error || "");
  if (docs.error) {
    notify("#message", docs.error, "error");
    $("#documents").focus();
    return;
  }
  const body = changes();
  if (Object.keys(body).length === 0) {
    notify("#message", "Nothing changed.", "info");
    return;
  }
  await busy($("#save"), async () => {
    try {
      fill(await patch(`/mailboxes/${id}`, body));
      notify("#message", "Saved.", "ok");
      if ("persona" in body) loadHistory();
    } catch (err) {
      // The server's own words: e.g. the exact token count of a persona over the limit.
      showError("#message", err);
      if (/persona/i.test(err.message)) fieldError($("#persona"), err.message);
    }
  });
});

$("#persona").addEventListener("input", () => fieldError($("#persona"), ""));

// --- connection of an external mailbox ---------------------------------------------------------
const connection = {
  section: $("#connection"),
  result: $("#connection-result"),
  choice: $("#connection-choice"),
  title: $("#connection-title"),
};
const SERVERS = { imap_host: ["imap", "host"], imap_port: ["imap", "port"], smtp_host: ["smtp", "host"], smtp_port: ["smtp", "port"] };
// The status reasons the IMAP door sets itself, and lifts once a login works (docs/imap.md).
const DOOR_PAUSE = /^IMAP (login failed|host refused)/;

/** The current servers in the form; login and password are never shown, so they start empty. */
function fillConnection(row) {
  if (row.kind !== "external") return;
  for (const [name, [server, key]] of Object.entries(SERVERS)) $(`#${name}`).value = row[server][key];
  $("#login").value = "";
  $("#password").value = "";
}

function connectionValues() {
  const out = Object.fromEntries(SERVER_FIELDS.map((name) => [name, $(`#${name}`).value]));
  for (const name of ["imap_host", "smtp_host", "login"]) out[name] = out[name].trim();
  for (const name of ["imap_port", "smtp_port"]) out[name] = Number(out[name]);
  return out;
}

/** A message per field the server would refuse anyway; focus goes to the first. */
function checkConnection(values) {
  let first = null;
  for (const name of SERVER_FIELDS) {
    const input = $(`#${name}`);
    let problem = "";
    if (name.endsWith("_host") && !values[name]) problem = "Required.";
    else if (name.endsWith("_port") && !(Number.isInteger(values[name]) && values[name] >= 1 && values[name] <= 65535)) problem = "A port from 1 to 65535.";
    else if (name === "login" && values.password && !values.login) problem = "Enter the login too, so the new password can be tested.";
    fieldError(input, problem);
    if (problem && !first) first = input;
  }
  if (first) {
    notify("#message", "Some connection fields need attention.", "error");
    first.focus();
  }
  return !first;
}

/** Only what changed; an empty login or password keeps the stored one. */
function connectionChanges(values) {
  const out = {};
  for (const [name, [server, key]] of Object.entries(SERVERS)) if (values[name] !== mailbox[server][key]) out[name] = values[name];
  if (values.login) out.login = values.login;
  if (values.password) out.password = values.password;
  return out;
}

async function saveConnection(body) {
  try {
    const row = await patch(`/mailboxes/${id}/connection`, body);
    clearConnection(connection);
    fill(row);
    fillConnection(row);
    const waiting = DOOR_PAUSE.test(row.status_reason) && row.status === "inactive";
    notify("#message", waiting ? "Connection saved. Reconnecting with the new settings…" : "Connection saved.", "ok");
    if (waiting) watchReconnect();
  } catch (err) {
    showError("#message", err);
  }
}

/** A mailbox the door paused wakes up once a login with the new settings works: show when. */
async function watchReconnect() {
  for (let tries = 0; tries < 45; tries += 1) {
    await new Promise((resolve) => setTimeout(resolve, 2000));
    let row;
    try {
      row = await get(`/mailboxes/${id}`);
    } catch {
      continue;
    }
    if (row.status !== "inactive" || !DOOR_PAUSE.test(row.status_reason)) {
      fill(row);
      if (row.status === "active") notify("#message", "Connected: the agent is active again.", "ok");
      return;
    }
  }
  notify("#message", "mailhook could not log in with the new settings yet; the status above shows the server's reason.", "error");
}

$("#connection-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const values = connectionValues();
  if (!checkConnection(values)) return;
  const body = connectionChanges(values);
  if (Object.keys(body).length === 0) {
    notify("#message", "Nothing changed in the connection.", "info");
    return;
  }
  await busy($("#connection-save"), async () => {
    notify("#message", "", "info");
    // The test needs the full credentials; without a new password the stored one is kept untested.
    if (values.password && !(await testConnection(values, connection))) return;
    await saveConnection(body);
  });
});

// A result no longer says anything about settings changed since.
for (const name of SERVER_FIELDS) $(`#${name}`).addEventListener("input", () => clearConnection(connection));
$("#save-anyway").addEventListener("click", (event) => busy(event.currentTarget, () => saveConnection(connectionChanges(connectionValues()))));

// --- persona history -------------------------------------------------------------------------
async function loadHistory() {
  const box = $("#history");
  $("#history-section").hidden = false;
  try {
    const versions = await get(`/mailboxes/${id}/persona/history`);
    if (versions.length === 0) {
      box.replaceChildren(el("p", { class: "muted" }, "No saved versions yet: every persona you save is kept here."));
      return;
    }
    box.replaceChildren(
      el(
        "ul",
        {},
        versions.map((v) =>
          el(
            "li",
            {},
            `${formatDate(v.time)} by ${v.author} (${v.chars.toLocaleString()} characters) `,
            el(
              "button",
              {
                type: "button",
                class: "secondary",
                onclick: async () => {
                  try {
                    const old = await get(`/mailboxes/${id}/persona/history/${v.commit}`);
                    $("#persona").value = old.persona;
                    updateCounter();
                    notify("#message", `Loaded the version of ${formatDate(v.time)} into the editor. Save to use it.`, "info");
                    $("#persona").focus();
                  } catch (err) {
                    showError("#message", err);
                  }
                },
              },
              "Load into editor",
              el("span", { class: "visually-hidden" }, ` (version of ${formatDate(v.time)})`),
            ),
          ),
        ),
      ),
    );
  } catch (err) {
    box.replaceChildren(el("p", { class: "notice notice-error" }, err.message));
  }
}

// --- pause, resume, delete ---------------------------------------------------------------------
function renderLifecycle(row) {
  const section = $("#lifecycle");
  section.hidden = row.status === "deleted";
  const actions = $("#status-actions");
  const target = row.status === "active" ? "inactive" : "active";
  const label = row.status === "active" ? "Pause this agent" : "Resume this agent";
  const button = el("button", { type: "button", class: "secondary" }, label);
  button.addEventListener("click", () =>
    busy(button, async () => {
      try {
        fill(await post(`/mailboxes/${id}/status`, { status: target }));
        notify("#message", target === "active" ? "Resumed." : "Paused.", "ok");
      } catch (err) {
        showError("#message", err);
      }
    }),
  );
  actions.replaceChildren(row.status === "pending_billing" ? el("a", { class: "button", href: "/app/billing.html" }, "Buy credits to resume") : button);
}

$("#delete-confirm").addEventListener("input", () => {
  $("#delete-mailbox").disabled = !mailbox || $("#delete-confirm").value.trim() !== mailbox.address;
});

$("#delete-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  if ($("#delete-confirm").value.trim() !== mailbox.address) return;
  await busy($("#delete-mailbox"), async () => {
    try {
      await del(`/mailboxes/${id}`);
      location.assign("/app/");
    } catch (err) {
      showError("#message", err);
    }
  });
});

async function load() {
  if (!id) {
    notify("#message", "No agent was chosen. Go back to the dashboard and pick one.", "error");
    return;
  }
  try {
    fill(await get(`/mailboxes/${id}`));
    fillConnection(mailbox);
    updateCounter = attachCounter($("#persona"), $("#persona-count"));
    if (param("created")) notify("#message", `Created ${mailbox.address}. Mail sent to it is now handled by the agent.`, "ok");
    loadHistory();
  } catch (err) {
    showError("#message", err);
    $("#summary").replaceChildren(el("p", {}, el("a", { href: "/app/" }, "Back to the dashboard")));
  }
}

load();
