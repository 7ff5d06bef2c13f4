// Create Agent wizard: kind → address (hosted handle, or an external mailbox with its server
// settings found by e-mail autoconfig) → persona and mode. An external mailbox's IMAP and SMTP
// login is tested before it is saved (with "Save anyway" when that fails). Plus batch import
// from CSV, read as an NDJSON progress stream.
import { get, post, readNdjson, request } from "../api.js";
import { clearConnection, SERVER_FIELDS, testConnection } from "../connection.js";
import { $, busy, el, fieldError, MODES, notify, pollOptions, shell, showError } from "../ui.js";
import { attachCounter } from "../tokens.js";

await shell("new");

const form = $("#wizard");
const sections = [...form.querySelectorAll("section[data-step]")];
let step = 1;

$("#mode").replaceChildren(...Object.entries(MODES).map(([value, label]) => el("option", { value, selected: value === "gated" }, label)));
$("#poll_interval_minutes").replaceChildren(...pollOptions(0));
attachCounter($("#persona"), $("#persona-count"));

const kind = () => form.querySelector("input[name=kind]:checked").value;

function show(next) {
  step = next;
  for (const section of sections) section.hidden = Number(section.dataset.step) !== step;
  for (const item of document.querySelectorAll("#steps li")) {
    if (Number(item.dataset.step) === step) item.setAttribute("aria-current", "step");
    else item.removeAttribute("aria-current");
  }
  $("#hosted-fields").hidden = kind() !== "hosted";
  $("#external-fields").hidden = kind() !== "external";
  // Move focus to the new step's heading so keyboard and screen-reader users follow along.
  sections[step - 1].querySelector("h2").focus();
}

function checkStep2() {
  const fields = kind() === "hosted" ? ["handle"] : ["address", "imap_host", "imap_port", "smtp_host", "smtp_port", "login", "password"];
  let first = null;
  for (const id of fields) {
    const input = $(`#${id}`);
    let problem = "";
    if (!input.value.trim()) problem = "Required.";
    else if (id === "handle" && !/^[a-z0-9][a-z0-9-]*$/.test(input.value)) problem = "Use lower-case letters, digits and dashes, starting with a letter or digit.";
    else if (input.type === "number" && !(Number(input.value) >= 1 && Number(input.value) <= 65535)) problem = "A port from 1 to 65535.";
    fieldError(input, problem);
    if (problem && !first) first = input;
  }
  if (first) {
    notify("#message", "Some fields need attention.", "error");
    first.focus();
    return false;
  }
  notify("#message", "", "info");
  return true;
}

form.addEventListener("click", (event) => {
  const button = event.target.closest("button");
  if (!button) return;
  if (button.classList.contains("next")) {
    if (step === 2 && !checkStep2()) return;
    show(step + 1);
  } else if (button.classList.contains("back")) {
    show(step - 1);
  }
});

// --- e-mail autoconfig ---------------------------------------------------------------------------
$("#autoconfig").addEventListener("click", async (event) => {
  const address = $("#address").value.trim();
  const notes = $("#autoconfig-notes");
  if (!address) {
    fieldError($("#address"), "Enter the address first.");
    $("#address").focus();
    return;
  }
  fieldError($("#address"), "");
  await busy(event.currentTarget, async () => {
    notes.replaceChildren("Looking up the server settings…");
    try {
      const found = await get(`/email-autoconfig?email=${encodeURIComponent(address)}`);
      $("#imap_host").value = found.imap.host;
      $("#imap_port").value = found.imap.port;
      $("#smtp_host").value = found.smtp.host;
      $("#smtp_port").value = found.smtp.port;
      if (!$("#login").value) $("#login").value = found.imap.username || address;
      const source = found.imap.source === found.smtp.source ? found.imap.source : `${found.imap.source} / ${found.smtp.source}`;
      notes.replaceChildren(
        el("p", { class: "notice notice-ok" }, `Filled in from ${found.provider || address.split("@")[1]} (source: ${source}). Check them, then enter the password.`),
        found.notes.length ? el("ul", {}, found.notes.map((n) => el("li", {}, n))) : null,
      );
      $("#password").focus();
    } catch (err) {
      notes.replaceChildren(el("p", { class: "notice notice-error" }, err.message));
    }
  });
});

// --- create ----------------------------------------------------------------------------------------
function body() {
  const common = { persona: $("#persona").value, mode: $("#mode").value };
  const displayName = $("#display_name").value.trim();
  if (displayName) common.display_name = displayName;
  if (kind() === "hosted") return { kind: "hosted", handle: $("#handle").value.trim(), ...common };
  return {
    kind: "external",
    address: $("#address").value.trim(),
    imap_host: $("#imap_host").value.trim(),
    imap_port: Number($("#imap_port").value),
    smtp_host: $("#smtp_host").value.trim(),
    smtp_port: Number($("#smtp_port").value),
    login: $("#login").value.trim(),
    password: $("#password").value,
    poll_interval_minutes: Number($("#poll_interval_minutes").value),
    ...common,
  };
}

async function save() {
  try {
    const mailbox = await post("/mailboxes", body());
    location.assign(`/app/mailbox.html?id=${mailbox.id}&created=1`);
  } catch (err) {
    showError("#message", err);
    $("#message").scrollIntoView({ block: "nearest" });
  }
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (step !== 3) return;
  await busy($("#create"), async () => {
    notify("#message", "", "info");
    if (kind() === "external" && !(await connectionWorks())) return;
    await save();
  });
});

// --- connection test before saving an external mailbox (connection.js) -----------------------
const connection = {
  section: $("#connection"),
  result: $("#connection-result"),
  choice: $("#connection-choice"),
  title: $("#connection-title"),
};
const connectionWorks = () => testConnection(body(), connection);
const resetConnection = () => clearConnection(connection);

// A result no longer says anything about settings changed since.
for (const id of SERVER_FIELDS) $(`#${id}`).addEventListener("input", resetConnection);
for (const radio of form.querySelectorAll("input[name=kind]")) radio.addEventListener("change", resetConnection);

$("#save-anyway").addEventListener("click", (event) => busy(event.currentTarget, save));

// --- batch import ------------------------------------------------------------------------------
$("#batch-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const file = $("#batch-file").files[0];
  const progress = $("#batch-progress");
  const results = $("#batch-results");
  const rows = results.querySelector("tbody");
  if (!file) {
    notify("#batch-message", "Choose a CSV file first.", "error");
    $("#batch-file").focus();
    return;
  }
  await busy($("#batch-submit"), async () => {
    rows.replaceChildren();
    results.hidden = true;
    progress.hidden = false;
    progress.value = 0;
    notify("#batch-message", "Importing…", "info");
    try {
      const text = await file.text();
      const response = await request("POST", `/mailboxes/batch?kind=${$("#batch-kind").value}`, { body: text, contentType: "text/csv", raw: true });
      results.hidden = false;
      await readNdjson(response, (line) => {
        if (line.done) {
          progress.value = progress.max;
          notify("#batch-message", `Done: ${line.created} created, ${line.failed} failed, of ${line.of}.`, line.failed ? "error" : "ok");
          return;
        }
        progress.max = line.of;
        progress.value = line.row;
        const ok = line.status === "created";
        const what = ok ? [line.address, ...(line.warnings || []).map((w) => ` (${w})`)].join("") : `${line.error}: ${line.detail}`;
        rows.append(
          el(
            "tr",
            {},
            el("td", { "data-label": "Row" }, String(line.row)),
            el("td", { "data-label": "Result" }, ok ? "created" : "failed"),
            el("td", { "data-label": "Detail", class: "wrap" }, what),
          ),
        );
      });
    } catch (err) {
      progress.hidden = true;
      showError("#batch-message", err);
    }
  });
});
