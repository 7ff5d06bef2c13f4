// The connection test of an external mailbox (POST /mailboxes/connection-test): log in to its IMAP
// and SMTP servers with the settings typed in and show each protocol's outcome. Shared by the
// Create Agent wizard (new.js) and the agent page's Connection form (mailbox.js); both save only
// when the test passes or the user chooses "Save anyway".
import { post } from "./api.js";
import { el, errorText } from "./ui.js";

/** The fields the test takes, as the API names them (they are also the form's input ids). */
export const SERVER_FIELDS = ["imap_host", "imap_port", "smtp_host", "smtp_port", "login", "password"];
const PROTOCOLS = [
  ["imap", "Incoming mail"],
  ["smtp", "Outgoing mail"],
];

/**
 * Run the test with `settings` and show the outcome in `parts.result` (a live region). On
 * failure `parts.choice` ("Save anyway") appears and focus moves to `parts.title`, so keyboard
 * and screen-reader users land on the outcome right above that choice. True when both worked.
 */
export async function testConnection(settings, parts) {
  const { section, result, choice, title } = parts;
  section.hidden = false;
  choice.hidden = true;
  result.replaceChildren(el("p", {}, "Logging in to the IMAP and SMTP servers…"));
  let report;
  try {
    report = await post("/mailboxes/connection-test", Object.fromEntries(SERVER_FIELDS.map((name) => [name, settings[name]])));
  } catch (err) {
    result.replaceChildren(el("p", { class: "notice notice-error" }, `The connection could not be tested: ${errorText(err)}`));
    report = null;
  }
  if (report) {
    const rows = PROTOCOLS.map(([key, label]) => {
      const outcome = report[key];
      // The API's reason already names the protocol and the server ("IMAP host:993: ...").
      const text = outcome.ok ? `${label} (${key.toUpperCase()}): the login works.` : `${label}: ${outcome.error}`;
      return el("li", { class: `notice notice-${outcome.ok ? "ok" : "error"}`, dataset: { protocol: key } }, text);
    });
    result.replaceChildren(el("ul", { class: "checks" }, rows));
    if (report.ok) return true;
  }
  choice.hidden = false;
  title.focus();
  return false;
}

/** Hide an outcome that no longer says anything about the settings (a field changed since). */
export function clearConnection(parts) {
  parts.section.hidden = true;
  parts.choice.hidden = true;
  parts.result.replaceChildren();
}
