// Billing: plan, credits, and the offers; buying sends the browser to Stripe Checkout.
import { get, post } from "../api.js";
import { $, busy, el, formatNumber, notify, param, shell, showError } from "../ui.js";

await shell("billing");

const checkout = param("checkout");
if (checkout === "success") notify("#message", "Thank you! Your payment went through; credits appear as soon as Stripe confirms it.", "ok");
if (checkout === "canceled") notify("#message", "Checkout was canceled; nothing was charged.", "info");

function price(offer) {
  if (offer.unit_amount === null || offer.unit_amount === undefined || !offer.currency) return "";
  const amount = new Intl.NumberFormat(undefined, { style: "currency", currency: offer.currency.toUpperCase() }).format(offer.unit_amount / 100);
  return offer.interval ? `${amount} per ${offer.interval}` : amount;
}

function offerCard(kind, title, offer, what) {
  // One key per page view and kind: a double click returns the same Checkout session.
  const key = crypto.randomUUID();
  const button = el("button", { type: "button" }, kind === "subscription" ? "Subscribe" : "Buy credits");
  button.addEventListener("click", () =>
    busy(button, async () => {
      try {
        const { url } = await post("/billing/checkout", { kind }, { headers: { "Idempotency-Key": key } });
        notify("#message", "Opening Stripe Checkout…", "info");
        location.assign(url);
      } catch (err) {
        showError("#message", err);
      }
    }),
  );
  return el("section", { class: "card", "aria-label": title }, el("h2", {}, title), el("p", {}, what(offer.credits), " ", price(offer)), offer.available ? button : el("p", { class: "muted" }, "Not offered on this server."));
}

async function load() {
  try {
    const [me, pricing] = await Promise.all([get("/me"), get("/pricing")]);
    $("#plan").textContent = me.plan;
    $("#credits").textContent = formatNumber(me.remaining_credits);
    $("#subscription").textContent = me.subscription_status || "none";
    if (!pricing.billing_enabled) {
      $("#offers").replaceChildren(
        el(
          "p",
          { class: "notice notice-info" },
          pricing.quota_enforced
            ? "Buying credits is not set up on this server. Ask its administrator for more credits."
            : "Billing is off on this server: credits are not counted.",
        ),
      );
      return;
    }
    $("#offers").replaceChildren(
      offerCard("one_time", "Credit pack", pricing.credit_pack, (n) => `${n.toLocaleString()} credits, once.`),
      offerCard("subscription", "Monthly subscription", pricing.subscription, (n) => `${n.toLocaleString()} credits every month; agents keep working at zero.`),
    );
  } catch (err) {
    showError("#message", err);
  }
}

load();
