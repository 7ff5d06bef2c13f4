// Sign in: e-mail and password for a token (kept in sessionStorage), then where the user was going.
import { getToken, post, safeNext, setToken } from "../api.js";
import { $, busy, notify, param, showError } from "../ui.js";

const REASONS = {
  expired: "Your session has ended. Please sign in again.",
  "signed-out": "You are signed out.",
  erased: "Your account has been deleted.",
};

const reason = REASONS[param("reason")];
if (reason) notify("#message", reason, "info");
// Already signed in (this tab): straight on. An expired token comes back here with a reason.
else if (getToken()) location.replace(safeNext(param("next")));

$("#login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  await busy($("#login-submit"), async () => {
    try {
      const { token } = await post("/auth/login", { email: form.email.value.trim(), password: form.password.value });
      setToken(token);
      location.assign(safeNext(param("next")));
    } catch (err) {
      showError("#message", err);
      form.password.select();
      form.password.focus();
    }
  });
});
