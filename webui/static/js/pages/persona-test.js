// "Test my persona": five sample e-mails answered with the current persona (nothing is sent).
// Earlier runs stay in this browser (localStorage, per agent, the last few) for comparison;
// they hold only the synthetic samples and replies, never real mail.
import { get, post } from "../api.js";
import { $, badge, busy, el, formatDate, idParam, notify, shell, showError } from "../ui.js";

await shell("dashboard");
const id = idParam();
const KEEP_RUNS = 5;
const storageKey = `mailhook.personaTests.${id}`;

function savedRuns() {
  try {
    const runs = JSON.parse(localStorage.getItem(storageKey) || "[]");
    return Array.isArray(runs) ? runs : [];
  } catch {
    return [];
  }
}

function saveRun(run) {
  const runs = [run, ...savedRuns()].slice(0, KEEP_RUNS);
  try {
    localStorage.setItem(storageKey, JSON.stringify(runs));
  } catch {
    // Storage full or disabled: the run is still shown, just not kept.
  }
  return runs;
}

/** One run's answer; `withEmail` also shows the e-mail (an earlier run had its own samples:
 * the model writes new ones each time, so position N is usually a different e-mail). */
function replyBlock(title, sample, withEmail = false) {
  if (!sample) return el("div", {}, el("h4", {}, title), el("p", { class: "muted" }, "No sample at this position."));
  const decision = sample.decision || {};
  const email = sample.email || {};
  return el(
    "div",
    {},
    el("h4", {}, title, " ", badge(decision.action || "unknown")),
    withEmail ? el("p", { class: "muted" }, `Its e-mail: "${email.subject || "(no subject)"}" from ${email.from || "unknown"}`) : null,
    withEmail ? el("pre", { class: "text" }, email.text || "") : null,
    decision.reason ? el("p", { class: "muted" }, `Why: ${decision.reason}`) : null,
    decision.trigger ? el("p", { class: "muted" }, `Trigger: ${decision.trigger}`) : null,
    sample.reply ? el("pre", { class: "text" }, sample.reply) : el("p", { class: "muted" }, "No reply (nothing would be sent)."),
  );
}

function render(current, earlier) {
  const results = $("#results");
  if (!current) {
    results.replaceChildren(el("div", { class: "empty" }, "No test run yet. Run one to see how the agent would answer five typical e-mails."));
    return;
  }
  results.replaceChildren(
    ...current.samples.map((sample, i) => {
      const email = sample.email || {};
      const other = earlier ? earlier.samples[i] : null;
      return el(
        "details",
        { open: i === 0 },
        el("summary", {}, `${i + 1}. ${email.subject || "(no subject)"} `, badge((sample.decision || {}).action || "unknown")),
        el("p", { class: "muted" }, `From ${email.from || "unknown"}`),
        el("pre", { class: "text" }, email.text || ""),
        el(
          "div",
          { class: earlier ? "compare two" : "compare" },
          replyBlock(`This run (${formatDate(current.at)})`, sample),
          earlier ? replyBlock(`Earlier run (${formatDate(earlier.at)})`, other, true) : null,
        ),
      );
    }),
  );
}

function renderCompare(runs) {
  const select = $("#compare");
  $("#compare-field").hidden = runs.length < 2;
  $("#forget").hidden = runs.length === 0;
  select.replaceChildren(
    el("option", { value: "" }, "No comparison"),
    ...runs.slice(1).map((run, i) => el("option", { value: i + 1 }, `${formatDate(run.at)}: persona starting "${run.personaStart}"`)),
  );
}

function showRuns() {
  const runs = savedRuns();
  renderCompare(runs);
  const chosen = Number($("#compare").value);
  render(runs[0], chosen ? runs[chosen] : null);
}

$("#compare").addEventListener("change", () => {
  const runs = savedRuns();
  const chosen = Number($("#compare").value);
  render(runs[0], chosen ? runs[chosen] : null);
});

$("#forget").addEventListener("click", () => {
  localStorage.removeItem(storageKey);
  showRuns();
  notify("#message", "Earlier runs forgotten.", "info");
});

$("#run").addEventListener("click", async (event) => {
  await busy(event.currentTarget, async () => {
    notify("#message", "Running the test: the agent is answering five sample e-mails…", "info");
    try {
      const [result, mailbox] = await Promise.all([post(`/mailboxes/${id}/persona/test`), get(`/mailboxes/${id}`)]);
      const personaStart = mailbox.persona.slice(0, 40).replace(/\s+/g, " ");
      saveRun({ at: new Date().toISOString(), personaStart, samples: result.samples });
      showRuns();
      notify("#message", `Done: ${result.samples.length} sample replies below.`, "ok");
    } catch (err) {
      showError("#message", err);
      if (err.status === 402 || err.status === 409) {
        $("#message").append(" ", el("a", { href: "/app/billing.html" }, "Go to billing"));
      }
    }
  });
});

if (!id) {
  notify("#message", "No agent was chosen. Go back to the dashboard and pick one.", "error");
  $("#run").disabled = true;
} else {
  $("#edit-link").href = `/app/mailbox.html?id=${id}`;
  get(`/mailboxes/${id}`)
    .then((mailbox) => {
      $("#intro").prepend(el("strong", {}, mailbox.address), ": ");
    })
    .catch((err) => showError("#message", err));
  showRuns();
}
