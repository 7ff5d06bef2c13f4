// Create an account; the API answers with a token, so the new user lands on the dashboard.
import { post, setToken } from "../api.js";
import { $, busy, fieldError, notify, showError } from "../ui.js";

$("#register-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  fieldError(form.password2, "");
  if (form.password.value !== form.password2.value) {
    fieldError(form.password2, "The two passwords are not the same.");
    notify("#message", "The two passwords are not the same.", "error");
    form.password2.focus();
    return;
  }
  await busy($("#register-submit"), async () => {
    try {
      const { token } = await post("/auth/register", { email: form.email.value.trim(), password: form.password.value });
      setToken(token);
      location.assign("/app/?welcome=1");
    } catch (err) {
      showError("#message", err);
    }
  });
});
