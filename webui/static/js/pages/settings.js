// Settings: who is signed in, and the danger zone (erase the account, typed confirmation and
// the password again, as the API requires).
import { clearToken, del, get } from "../api.js";
import { $, busy, shell, showError } from "../ui.js";

await shell("settings");
const PHRASE = "delete my account";

function ready() {
  $("#erase").disabled = $("#erase-confirm").value.trim().toLowerCase() !== PHRASE || !$("#erase-password").value;
}
$("#erase-confirm").addEventListener("input", ready);
$("#erase-password").addEventListener("input", ready);

$("#erase-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  ready();
  if ($("#erase").disabled) return;
  await busy($("#erase"), async () => {
    try {
      await del("/me", { password: $("#erase-password").value }, { authErrors: true });
      clearToken();
      // Persona test runs kept in this browser belong to the erased account too.
      for (const key of Object.keys(localStorage)) if (key.startsWith("mailhook.")) localStorage.removeItem(key);
      location.assign("/app/login.html?reason=erased");
    } catch (err) {
      showError("#message", err);
      $("#erase-password").focus();
    }
  });
  ready();
});

get("/me")
  .then((me) => {
    $("#email").textContent = me.email;
    $("#plan").textContent = me.plan;
  })
  .catch((err) => showError("#message", err));
